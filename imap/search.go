package imap

import (
	"bufio"
	"bytes"
	"cmp"
	"io"
	"slices"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	// Registers the charset decoders go-message uses for text parts and
	// encoded words (windows-1252, iso-8859-*, koi8-r, ...): without it,
	// only UTF-8 and US-ASCII text can be searched.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"

	"postkasse.dev/postkasse/internal/mimetree"

	"postkasse.dev/postkasse/store"
)

// searchMessage is what the criteria are matched against; body is loaded
// only when a criterion needs it.
type searchMessage struct {
	ref    msgRef
	info   *store.MessageInfo
	recent bool
	body   []byte
	// cached, when set, answers the HEADER criteria instead of body.
	cached *cachedHeader
	sent   time.Time
}

// Search implements SEARCH and UID SEARCH, with ESEARCH results and SAVE.
func (s *session) Search(kind imapserver.NumKind, criteria *goimap.SearchCriteria, options *goimap.SearchOptions) (*goimap.SearchData, error) {
	sel, acc, err := s.current()
	if err != nil {
		return nil, err
	}
	all := sel.resolve(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}})
	seqs := seqFinder{refs: all}
	var maxSeq uint32
	var maxUID store.UID
	for _, r := range all {
		maxSeq, maxUID = max(maxSeq, r.seq), max(maxUID, r.uid)
	}
	m := matcher{sel: sel, maxSeq: maxSeq, maxUID: maxUID}
	needBody, needSent := m.needs(criteria)
	// Criteria on the envelope's fields alone are answered from the
	// messages' search blocks; a message stored without one is read.
	useCache := needBody && cacheable(criteria)
	var data goimap.SearchData
	var uidSet goimap.UIDSet
	var seqSet goimap.SeqSet
	// \Recent as of now, so the scan below takes no lock of the hub.
	sel.lf.mu.RLock()
	recent := slices.Clone(sel.recent)
	sel.lf.mu.RUnlock()
	eval := func(info *store.MessageInfo, body []byte, cached *cachedHeader) {
		msg := searchMessage{ref: msgRef{seq: seqs.seq(info.UID), uid: info.UID}, info: info,
			recent: sel.rev1 && hasUID(recent, info.UID), body: body, cached: cached}
		if needSent {
			if env, _, err := decodeCache(info.Meta); err == nil {
				msg.sent = env.Date
			}
		}
		if !m.match(criteria, &msg) {
			return
		}
		uidSet.AddNum(goimap.UID(info.UID))
		num := msg.ref.seq
		if kind == imapserver.NumKindUID {
			num = info.UID
		} else {
			seqSet.AddNum(num)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
	}
	switch {
	case useCache:
		err = s.searchCached(acc, sel, uidsOf(all), eval)
	case needBody && hasText(criteria):
		err = s.searchNarrowed(acc, sel, uidsOf(all), criteria, needSent, eval)
	default:
		err = s.srv.opts.Store.Messages(s.ctx, acc, sel.folderID, uidsOf(all), func(info *store.MessageInfo) error {
			var body []byte
			if needBody {
				var err error
				if body, err = s.body(acc, sel, info.UID); err != nil {
					return err
				}
			}
			eval(info, body, nil)
			return nil
		})
	}
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if options.ReturnSave {
		sel.searchRes = uidSet
	}
	return &data, nil
}

// seqFinder finds the sequence numbers of UIDs in refs (ascending, as
// resolve returns them). The scans ask in ascending order, so it tries the
// entry after the last one found before searching: a step per message
// instead of a map of the whole folder (at 100,000 messages, building and
// reading that map was a seventh of a header search's time).
type seqFinder struct {
	refs []msgRef
	next int
}

// seq returns uid's sequence number, or 0 when refs lack it.
func (f *seqFinder) seq(uid store.UID) uint32 {
	if f.next < len(f.refs) && f.refs[f.next].uid == uid {
		f.next++
		return f.refs[f.next-1].seq
	}
	i, ok := slices.BinarySearchFunc(f.refs, uid, func(r msgRef, uid store.UID) int { return cmp.Compare(r.uid, uid) })
	if !ok {
		return 0
	}
	f.next = i + 1
	return f.refs[i].seq
}

// searchCached evaluates criteria the search blocks answer: in place, in
// the store's read, for the messages that have one (nothing copied), then
// with their text for those stored before the blocks existed.
func (s *session) searchCached(acc store.Access, sel *selection, uids []store.UID, eval func(*store.MessageInfo, []byte, *cachedHeader)) error {
	var cached cachedHeader
	var later []store.MessageInfo
	err := s.srv.opts.Store.MessagesInPlace(s.ctx, acc, sel.folderID, uids, func(info *store.MessageInfo) error {
		if !readSearchBlock(searchPart(info), &cached) {
			c := *info
			c.Meta, c.SearchData = bytes.Clone(info.Meta), nil
			later = append(later, c)
			return nil
		}
		eval(info, nil, &cached)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range later {
		body, err := s.body(acc, sel, later[i].UID)
		if err != nil {
			return err
		}
		eval(&later[i], body, nil)
	}
	return nil
}

// narrowChunk is how many messages searchNarrowed looks at before it
// reads the candidates among them, bounding what it holds.
const narrowChunk = 4096

// searchNarrowed evaluates criteria with TEXT or BODY: the messages'
// text signatures pass over those that cannot match, in place in the
// store's read, and the others are read and matched as before.
func (s *session) searchNarrowed(acc store.Access, sel *selection, uids []store.UID, c *goimap.SearchCriteria, needSent bool, eval func(*store.MessageInfo, []byte, *cachedHeader)) error {
	for len(uids) > 0 {
		n := min(len(uids), narrowChunk)
		var candidates []store.MessageInfo
		err := s.srv.opts.Store.MessagesInPlace(s.ctx, acc, sel.folderID, uids[:n], func(info *store.MessageInfo) error {
			if !mayMatchText(c, readSignature(searchPart(info)), info.Prefix) {
				return nil
			}
			m := *info
			m.Meta, m.Prefix, m.SearchData = nil, nil, nil
			if needSent {
				m.Meta = bytes.Clone(info.Meta)
			}
			candidates = append(candidates, m)
			return nil
		})
		if err != nil {
			return err
		}
		for i := range candidates {
			body, err := s.body(acc, sel, candidates[i].UID)
			if err != nil {
				return err
			}
			eval(&candidates[i], body, nil)
		}
		uids = uids[n:]
	}
	return nil
}

// hasText reports whether the criteria have TEXT or BODY, not under NOT.
func hasText(c *goimap.SearchCriteria) bool {
	if len(c.Body) > 0 || len(c.Text) > 0 {
		return true
	}
	for _, or := range c.Or {
		if hasText(&or[0]) && hasText(&or[1]) {
			return true
		}
	}
	return false
}

// matcher evaluates search criteria for one selection.
type matcher struct {
	sel    *selection
	maxSeq uint32
	maxUID store.UID
}

// needs reports whether the criteria need the body or the Date header.
func (m *matcher) needs(c *goimap.SearchCriteria) (body, sent bool) {
	body = len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0
	sent = !c.SentSince.IsZero() || !c.SentBefore.IsZero()
	for i := range c.Not {
		b, s := m.needs(&c.Not[i])
		body, sent = body || b, sent || s
	}
	for i := range c.Or {
		for j := range c.Or[i] {
			b, s := m.needs(&c.Or[i][j])
			body, sent = body || b, sent || s
		}
	}
	return body, sent
}

func (m *matcher) match(c *goimap.SearchCriteria, msg *searchMessage) bool {
	for _, set := range c.SeqNum {
		if goimap.IsSearchRes(set) {
			if !m.sel.searchRes.Contains(goimap.UID(msg.ref.uid)) {
				return false
			}
		} else if !containsSeq(set, msg.ref.seq, m.maxSeq) {
			return false
		}
	}
	for _, set := range c.UID {
		if goimap.IsSearchRes(set) {
			set = m.sel.searchRes
		}
		if !containsUID(set, msg.ref.uid, m.maxUID) {
			return false
		}
	}
	if !matchDates(c, msg) || !m.matchFlags(c, msg) {
		return false
	}
	if c.Larger > 0 && msg.info.Size <= c.Larger || c.Smaller > 0 && msg.info.Size >= c.Smaller {
		return false
	}
	if !matchText(c, msg) {
		return false
	}
	for i := range c.Not {
		if m.match(&c.Not[i], msg) {
			return false
		}
	}
	for _, or := range c.Or {
		if !m.match(&or[0], msg) && !m.match(&or[1], msg) {
			return false
		}
	}
	return true
}

func containsUID(set goimap.UIDSet, uid, maxUID store.UID) bool {
	for _, r := range set {
		start, stop := staticRange(uint32(r.Start), uint32(r.Stop), maxUID)
		if uid >= start && uid <= stop {
			return true
		}
	}
	return false
}

// dayOf keeps a time's calendar date, as SEARCH compares dates only.
func dayOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
}

func matchDates(c *goimap.SearchCriteria, msg *searchMessage) bool {
	internal := dayOf(msg.info.InternalDate)
	if !c.Since.IsZero() && internal.Before(dayOf(c.Since)) {
		return false
	}
	if !c.Before.IsZero() && !internal.Before(dayOf(c.Before)) {
		return false
	}
	if c.SentSince.IsZero() && c.SentBefore.IsZero() {
		return true
	}
	if msg.sent.IsZero() {
		return false
	}
	sent := dayOf(msg.sent)
	if !c.SentSince.IsZero() && sent.Before(dayOf(c.SentSince)) {
		return false
	}
	return c.SentBefore.IsZero() || sent.Before(dayOf(c.SentBefore))
}

func (m *matcher) matchFlags(c *goimap.SearchCriteria, msg *searchMessage) bool {
	has := func(f goimap.Flag) bool {
		if strings.EqualFold(string(f), `\Recent`) {
			return msg.recent
		}
		return slices.ContainsFunc(msg.info.Flags, func(g string) bool { return strings.EqualFold(g, string(f)) })
	}
	for _, f := range c.Flag {
		if !has(f) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if has(f) {
			return false
		}
	}
	return true
}

// matchText applies HEADER, BODY and TEXT: case-insensitive substrings of
// the header values (raw and decoded) and of the decoded text parts.
func matchText(c *goimap.SearchCriteria, msg *searchMessage) bool {
	if len(c.Header) == 0 && len(c.Body) == 0 && len(c.Text) == 0 {
		return true
	}
	if msg.cached != nil {
		// cacheable: header criteria on cached fields, nothing else.
		for _, hf := range c.Header {
			if !msg.cached.contains(hf.Key, strings.ToLower(hf.Value)) {
				return false
			}
		}
		return true
	}
	body := msg.body
	header, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if err != nil {
		return false
	}
	for _, hf := range c.Header {
		if !headerContains(header, hf.Key, hf.Value) {
			return false
		}
	}
	if len(c.Body) == 0 && len(c.Text) == 0 {
		return true
	}
	text := bodyText(body)
	rawHeader := string(body[:headerLength(body)])
	// Decoded before lower-casing: lower case breaks base64 encoded words.
	headerText, decodedHeader := strings.ToLower(rawHeader), strings.ToLower(decodeWords(rawHeader))
	for _, needle := range c.Body {
		if !strings.Contains(text, strings.ToLower(needle)) {
			return false
		}
	}
	for _, needle := range c.Text {
		n := strings.ToLower(needle)
		if !strings.Contains(text, n) && !strings.Contains(headerText, n) && !strings.Contains(decodedHeader, n) {
			return false
		}
	}
	return true
}

// headerContains matches a HEADER criterion (SEARCH FROM, TO, CC, BCC and
// SUBJECT arrive as one): a case-insensitive substring of a field's raw or
// decoded value, or, for an address field, of an address as the envelope
// has it ("user@domain" without comments or white space, or its name).
func headerContains(h textproto.Header, key, value string) bool {
	values := h.Values(key)
	if len(values) == 0 {
		return false
	}
	if value == "" {
		return true
	}
	needle := strings.ToLower(value)
	for _, p := range headerPieces(key, values) {
		if strings.Contains(p, needle) {
			return true
		}
	}
	return false
}

// headerPieces returns the lower-cased texts a HEADER criterion on a
// field looks for its needle in: each value raw and decoded, and for an
// address field each address as `name <user@domain>`. The search block
// (searchcache.go) keeps them for the fields of the envelope.
func headerPieces(key string, values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, strings.ToLower(v), strings.ToLower(decodeWords(v)))
		if !isAddressField(key) {
			continue
		}
		for _, a := range parseAddressList(v) {
			addr := a.Addr()
			if addr == "" {
				addr = a.Mailbox // a group's name
			}
			out = append(out, strings.ToLower(a.Name+" <"+addr+">"))
		}
	}
	return out
}

func isAddressField(key string) bool {
	switch strings.ToLower(key) {
	case "from", "to", "cc", "bcc", "sender", "reply-to":
		return true
	}
	return false
}

// headerLength returns the length of the header block, blank line included.
func headerLength(body []byte) int {
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return len(body)
}

// bodyText returns the lower-cased text of a message's parts, with their
// transfer encoding and charset undone, found in one bounded pass over
// the message (mimetree), so a deeply nested message costs no more to
// search than a flat one.
func bodyText(body []byte) string { return strings.ToLower(rawBodyText(body)) }

// rawBodyText is bodyText before lower-casing.
func rawBodyText(body []byte) string {
	var b strings.Builder
	appendText(&b, body, mimetree.Parse(body))
	return b.String()
}

func appendText(b *strings.Builder, msg []byte, p *mimetree.Part) {
	switch p.Kind {
	case mimetree.Multipart:
		for _, c := range p.Children {
			appendText(b, msg, c)
		}
		return
	case mimetree.Message:
		// The embedded message's header is text of this body too.
		inner := p.Children[0]
		b.Write(msg[inner.Start:inner.HeaderEnd])
		appendText(b, msg, inner)
		return
	case mimetree.Flattened:
		b.Write(p.Content(msg))
	default:
		e, err := gomessage.New(gomessage.Header{Header: p.Header}, bytes.NewReader(p.Content(msg)))
		if e == nil || err != nil && !gomessage.IsUnknownCharset(err) {
			b.Write(p.Content(msg))
		} else if _, err := io.Copy(b, e.Body); err != nil {
			b.Write(p.Content(msg))
		}
	}
	b.WriteByte('\n')
}
