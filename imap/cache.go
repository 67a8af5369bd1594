package imap

import (
	"encoding/binary"
	"errors"
	"sort"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/internal/mimetree"
)

// The store keeps, with every message, the envelope and body structure
// parsed once at delivery (Analyze), so FETCH never parses a message for
// them. The encoding is ours: a version byte, then fields as varint-prefixed
// strings and lists.

// The cache's version: 1 is the envelope and structure alone. Version 2
// put the search block (searchcache.go) and the text signature (textsig.go)
// before the envelope, in every copy's record; they now live once per body
// (SearchData), so the cache is laid out as version 1 again, and a version
// 2 cache is stale (RefreshMeta rewrites it).
const (
	cacheVersion       = 1
	cacheVersionSearch = 2
)

var errBadCache = errors.New("imap: unreadable message cache")

// Analyze parses a message's header and MIME structure and encodes what
// FETCH ENVELOPE and BODYSTRUCTURE need. Malformed messages give a degraded
// structure, never an error: the message itself is stored as received.
func Analyze(body []byte) (cache []byte) {
	env, bs := parseMessage(body)
	var e encoder
	e.byte(cacheVersion)
	e.envelope(env)
	e.structure(bs)
	return e.b
}

// decodeCache reads what Analyze wrote.
func decodeCache(b []byte) (*goimap.Envelope, goimap.BodyStructure, error) {
	return decodeCacheZones(b, nil, &arena{})
}

// zoneCache keeps the fixed time zones of Date headers, so a FETCH of many
// messages does not make a time.Location for each.
type zoneCache map[int]*time.Location

func (z zoneCache) get(offset int) *time.Location {
	if z == nil {
		return time.FixedZone("", offset)
	}
	loc, ok := z[offset]
	if !ok {
		if len(z) > 64 {
			clear(z)
		}
		loc = time.FixedZone("", offset)
		z[offset] = loc
	}
	return loc
}

// decodeCacheZones is decodeCache with a zone cache (may be nil) and an
// arena to take the decoded objects from.
func decodeCacheZones(b []byte, zones zoneCache, a *arena) (*goimap.Envelope, goimap.BodyStructure, error) {
	if len(b) < 1 || b[0] != cacheVersion && b[0] != cacheVersionSearch {
		return nil, nil, errBadCache
	}
	version := b[0]
	b = b[1:]
	if version == cacheVersionSearch {
		// Past the search block and the text signature.
		for range 2 {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return nil, nil, errBadCache
			}
			b = b[k+int(n):]
		}
	}
	// One string holds every field: the decoded strings are slices of it,
	// not an allocation each.
	d := decoder{b: b, s: string(b), zones: zones, a: a}
	env := d.envelope()
	bs := d.structure(0)
	if d.err != nil {
		return nil, nil, d.err
	}
	return env, bs, nil
}

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)   { e.b = append(e.b, v) }
func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}
func (e *encoder) strs(l []string) {
	e.uint(uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

func (e *encoder) params(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

func (e *encoder) addresses(l []goimap.Address) {
	e.uint(uint64(len(l)))
	for _, a := range l {
		e.str(a.Name)
		e.str(a.Mailbox)
		e.str(a.Host)
	}
}

func (e *encoder) envelope(env *goimap.Envelope) {
	if env == nil {
		env = &goimap.Envelope{}
	}
	if env.Date.IsZero() {
		e.int(0)
	} else {
		e.int(env.Date.Unix())
		_, off := env.Date.Zone()
		e.int(int64(off))
	}
	e.str(env.Subject)
	for _, l := range [][]goimap.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		e.addresses(l)
	}
	e.strs(env.InReplyTo)
	e.str(env.MessageID)
}

func (e *encoder) disposition(d *goimap.BodyStructureDisposition) {
	e.bool(d != nil)
	if d != nil {
		e.str(d.Value)
		e.params(d.Params)
	}
}

// Part kinds in the encoding.
const (
	partSingle byte = 1
	partMulti  byte = 2
)

func (e *encoder) structure(bs goimap.BodyStructure) {
	switch p := bs.(type) {
	case *goimap.BodyStructureMultiPart:
		e.byte(partMulti)
		e.str(p.Subtype)
		e.uint(uint64(len(p.Children)))
		for _, c := range p.Children {
			e.structure(c)
		}
		ext := p.Extended
		if ext == nil {
			ext = &goimap.BodyStructureMultiPartExt{}
		}
		e.params(ext.Params)
		e.disposition(ext.Disposition)
		e.strs(ext.Language)
		e.str(ext.Location)
	case *goimap.BodyStructureSinglePart:
		e.byte(partSingle)
		e.str(p.Type)
		e.str(p.Subtype)
		e.params(p.Params)
		e.str(p.ID)
		e.str(p.Description)
		e.str(p.Encoding)
		e.uint(uint64(p.Size))
		e.bool(p.Text != nil)
		if p.Text != nil {
			e.int(p.Text.NumLines)
		}
		e.bool(p.MessageRFC822 != nil)
		if m := p.MessageRFC822; m != nil {
			e.envelope(m.Envelope)
			e.structure(m.BodyStructure)
			e.int(m.NumLines)
		}
		ext := p.Extended
		if ext == nil {
			ext = &goimap.BodyStructureSinglePartExt{}
		}
		e.disposition(ext.Disposition)
		e.strs(ext.Language)
		e.str(ext.Location)
	default:
		e.structure(plainStructure(0))
	}
}

type decoder struct {
	b     []byte // what is left to read
	s     string // all of the cache, as a string
	err   error
	zones zoneCache
	a     *arena
}

func (d *decoder) fail() { d.err = errBadCache; d.b = nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	start := len(d.s) - len(d.b)
	d.b = d.b[n:]
	return d.s[start : start+int(n)]
}

func (d *decoder) bool() bool { return d.byte() == 1 }

// count reads a list length, refusing lengths the remaining bytes cannot hold.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *decoder) params() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) addresses() []goimap.Address {
	n := d.count()
	if n == 0 {
		return nil
	}
	l := takeN(&d.a.addrs, n)
	for i := range l {
		l[i] = goimap.Address{Name: d.str(), Mailbox: d.str(), Host: d.str()}
	}
	return l
}

func (d *decoder) envelope() *goimap.Envelope {
	env := take(&d.a.envs)
	if sec := d.int(); sec != 0 {
		off := d.int()
		env.Date = time.Unix(sec, 0).In(d.zones.get(int(off)))
	}
	env.Subject = d.str()
	for _, l := range []*[]goimap.Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc} {
		*l = d.addresses()
	}
	env.InReplyTo = d.strs()
	env.MessageID = d.str()
	return env
}

func (d *decoder) disposition() *goimap.BodyStructureDisposition {
	if !d.bool() {
		return nil
	}
	return &goimap.BodyStructureDisposition{Value: d.str(), Params: d.params()}
}

// maxDepth bounds nesting, so a crafted cache cannot exhaust the stack;
// Analyze describes no deeper part than mimetree.MaxDepth.
const maxDepth = mimetree.MaxDepth

func (d *decoder) structure(depth int) goimap.BodyStructure {
	if depth > maxDepth {
		d.fail()
		return plainStructure(0)
	}
	switch d.byte() {
	case partMulti:
		p := &goimap.BodyStructureMultiPart{Subtype: d.str()}
		n := d.count()
		for range n {
			p.Children = append(p.Children, d.structure(depth+1))
		}
		p.Extended = &goimap.BodyStructureMultiPartExt{
			Params: d.params(), Disposition: d.disposition(), Language: d.strs(), Location: d.str(),
		}
		return p
	case partSingle:
		p := take(&d.a.singles)
		*p = goimap.BodyStructureSinglePart{
			Type: d.str(), Subtype: d.str(), Params: d.params(), ID: d.str(),
			Description: d.str(), Encoding: d.str(), Size: uint32(d.uint()),
		}
		if d.bool() {
			p.Text = take(&d.a.texts)
			p.Text.NumLines = d.int()
		}
		if d.bool() {
			p.MessageRFC822 = &goimap.BodyStructureMessageRFC822{Envelope: d.envelope()}
			p.MessageRFC822.BodyStructure = d.structure(depth + 1)
			p.MessageRFC822.NumLines = d.int()
		}
		p.Extended = take(&d.a.exts)
		*p.Extended = goimap.BodyStructureSinglePartExt{
			Disposition: d.disposition(), Language: d.strs(), Location: d.str(),
		}
		return p
	default:
		d.fail()
		return plainStructure(0)
	}
}
