package imap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"

	"postkasse.dev/postkasse/store"
)

// SearchData (kept by the store once per body, store.Options.SearchData)
// holds a search block: for each header field, the lower-cased texts that
// SEARCH HEADER, FROM, TO, CC, BCC and SUBJECT look for a substring in
// (headerPieces), computed once at delivery. The envelope's fields come
// first, in a fixed order, then every other plainly named field by name. A
// search of header fields then reads the search data only, never the
// message. The text signature (textsig.go) follows the block.

// searchDataVersion is SearchData's first byte. What follows it is laid
// out as in a version 2 message cache (cache.go), which carried the same
// two parts in every copy's record, so SEARCH reads either.
const searchDataVersion = 1

// SearchData computes what SEARCH reads of a message instead of its text:
// its search block and text signature.
func SearchData(body []byte) []byte {
	block := searchBlock(body)
	sig := textSignature(body)
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(block)+len(sig))
	b = append(b, searchDataVersion)
	b = appendField(b, string(block))
	return appendField(b, string(sig))
}

// searchPart returns a message's search block and text signature, from
// its body's search data or, until RefreshMeta has rewritten it, from a
// version 2 cache; nil when it has neither.
func searchPart(info *store.MessageInfo) []byte {
	if d := info.SearchData; len(d) > 0 && d[0] == searchDataVersion {
		return d[1:]
	}
	if m := info.Meta; len(m) > 0 && m[0] == cacheVersionSearch {
		return m[1:]
	}
	return nil
}

// cachedFields are the fields at fixed places in the search block.
var cachedFields = []string{"subject", "from", "to", "cc", "bcc", "sender", "reply-to", "message-id", "in-reply-to", "date"}

// The search block's first byte.
const (
	blockFields   = 1 // the fields follow
	blockNoHeader = 2 // the header does not parse: no HEADER criterion matches
	blockUnsure   = 3 // search the message itself
)

// maxBlockHeader bounds the header a search block is made of: a larger
// one (hostile, or a mailing list's thousands of recipients) is searched
// in the message itself, so delivery stays linear and cheap.
const maxBlockHeader = 64 << 10

// searchBlock builds a message's search block. Each field is kept as
// NUL, then its pieces joined by NUL (empty when the message lacks the
// field), so a needle, which has no NUL, matches the text exactly when it
// is in one of the pieces.
func searchBlock(body []byte) (block []byte) {
	defer func() {
		// Outside parsers fed outside input: a panic costs the message its
		// block, not its delivery.
		if recover() != nil {
			block = []byte{blockUnsure}
		}
	}()
	if len(body) > 0 && (body[0] == ' ' || body[0] == '\t') || headerLength(body) > maxBlockHeader {
		// Stored behind the mailbox's own header lines, a first line that
		// continues a field would continue theirs: the block could not say
		// what SEARCH sees.
		return []byte{blockUnsure}
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if err != nil {
		return []byte{blockNoHeader}
	}
	b := []byte{blockFields}
	for _, key := range cachedFields {
		values := h.Values(key)
		if len(values) == 0 {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = appendField(b, fieldText(key, values))
	}
	// Then every other field, by name, so a HEADER criterion on any field
	// reads the block too.
	seen := map[string]bool{}
	for _, key := range cachedFields {
		seen[key] = true
	}
	for f := h.Fields(); f.Next(); {
		name := strings.ToLower(f.Key())
		if seen[name] || !plainFieldName(name) {
			continue
		}
		seen[name] = true
		b = appendField(b, name)
		b = appendField(b, fieldText(name, h.Values(f.Key())))
	}
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// fieldText is a present field's pieces, each after a NUL; a piece the
// same as the one before it is left out, as it matches nothing new.
func fieldText(key string, values []string) string {
	var b strings.Builder
	last := ""
	for i, p := range headerPieces(key, values) {
		if i > 0 && p == last {
			continue // decoding changed nothing: no new match
		}
		b.WriteByte(0)
		b.WriteString(p)
		last = p
	}
	if b.Len() == 0 {
		return "\x00"
	}
	return b.String()
}

// plainFieldName reports whether a field name is letters, digits and
// hyphens: names whose case the header parser folds, so a lower-case
// comparison finds what it finds.
func plainFieldName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// cachedHeader is the search block of one message's cache.
type cachedHeader struct {
	kind   byte
	fields [][]byte // by cachedFields' order
	others []byte   // the other fields: name and text, each length-prefixed
}

// readSearchBlock finds the search block in a searchPart; false when
// there is none, or it is unreadable.
func readSearchBlock(part []byte, ch *cachedHeader) bool {
	n, k := binary.Uvarint(part)
	if k <= 0 || n < 1 || n > uint64(len(part)-k) {
		return false
	}
	b := part[k : k+int(n)]
	ch.kind, b = b[0], b[1:]
	ch.fields = ch.fields[:0]
	if ch.kind != blockFields {
		return ch.kind == blockNoHeader
	}
	for range cachedFields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return false
		}
		ch.fields = append(ch.fields, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	ch.others = b
	return true
}

// other returns the text of a field outside cachedFields, or nil when the
// message lacks it.
func (ch *cachedHeader) other(name string) []byte {
	b := ch.others
	for len(b) > 0 {
		var key, text []byte
		key, b = nextText(b)
		text, b = nextText(b)
		if strings.EqualFold(string(key), name) {
			return text
		}
	}
	return nil
}

// nextText splits a length-prefixed text off b; a damaged b ends.
func nextText(b []byte) (text, rest []byte) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil
	}
	return b[k : k+int(n)], b[k+int(n):]
}

// readSignature returns the text signature in a searchPart; nil when it
// has none.
func readSignature(b []byte) []byte {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil
	}
	b = b[k+int(n):]
	sig, _ := nextText(b)
	return sig
}

// cachedField returns the index of a field in the search block, or -1.
func cachedField(key string) int {
	for i, f := range cachedFields {
		if strings.EqualFold(f, key) {
			return i
		}
	}
	return -1
}

// contains applies a HEADER criterion on a field with a lower-cased
// needle, as headerContains does on the message.
func (ch *cachedHeader) contains(key, needle string) bool {
	if ch.kind != blockFields {
		return false
	}
	var text []byte
	if i := cachedField(key); i >= 0 {
		text = ch.fields[i]
	} else {
		text = ch.other(key)
	}
	if needle == "" {
		return len(text) > 0
	}
	return bytes.Contains(text, []byte(needle))
}

// cacheable reports whether the criteria need nothing of the message's
// text but HEADER criteria (SEARCH FROM, SUBJECT and the like among them)
// on plainly named fields, so the search block answers them.
func cacheable(c *goimap.SearchCriteria) bool {
	if len(c.Body) > 0 || len(c.Text) > 0 {
		return false
	}
	for _, hf := range c.Header {
		// Delivered-To is also in the lines the store keeps before the
		// body for each mailbox (store.Target.Prefix), which Analyze
		// never sees.
		if !plainFieldName(hf.Key) || strings.EqualFold(hf.Key, "Delivered-To") || strings.Contains(hf.Value, "\x00") {
			return false
		}
	}
	for i := range c.Not {
		if !cacheable(&c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !cacheable(&c.Or[i][0]) || !cacheable(&c.Or[i][1]) {
			return false
		}
	}
	return true
}
