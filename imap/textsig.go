package imap

import (
	"math/bits"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
)

// The text signature narrows SEARCH TEXT and BODY: delivery hashes every
// three-byte window (trigram) of the text those criteria look in (the
// decoded, lower-cased text parts, and the header raw and decoded) into a
// bitmap kept in the message cache. A needle can be in a message only if
// all its trigrams' bits are set, so the messages whose bitmap lacks one
// are passed over unread; the others are searched as before. A bit set by
// another trigram only costs a read, never a hit: the signature narrows
// the candidates, it never decides a match.

// Signature sizes: about one bit per byte of text, in powers of two.
const (
	minSignature = 32   // bytes
	maxSignature = 4096 // bytes
)

// textSignature returns a message's signature, or nil when the message
// must always be read (its first line would continue the mailbox's own
// header lines).
func textSignature(body []byte) []byte {
	if len(body) > 0 && (body[0] == ' ' || body[0] == '\t') {
		return nil
	}
	header := string(body[:headerLength(body)])
	// The texts before lower-casing, which addTrigrams does; the decoded
	// header only where decoding changed it, as the same text again would
	// add the same bits.
	texts := [3]string{rawBodyText(body), header}
	if decoded := decodeWords(header); decoded != header {
		texts[2] = decoded
	}
	// Sized for the header twice, raw and decoded, whether or not the
	// decoded one is left out.
	n := len(texts[0]) + 2*len(texts[1])
	size := minSignature
	for size < n/8 && size < maxSignature {
		size *= 2
	}
	sig := make([]byte, size)
	shift := 32 - bits.TrailingZeros(uint(size*8))
	for _, t := range texts {
		addTrigrams(sig, t, shift)
	}
	return sig
}

// addTrigrams sets the bits of the trigrams of t lower-cased. ASCII text,
// the usual case, is lower-cased byte by byte on the way, without a
// lower-cased copy; other text is lower-cased as the needles are
// (strings.ToLower), where a letter may change its length.
func addTrigrams(sig []byte, t string, shift int) {
	if !isASCII(t) {
		t = strings.ToLower(t)
		for i := 0; i+3 <= len(t); i++ {
			b := trigramBit(t[i], t[i+1], t[i+2], shift)
			sig[b/8] |= 1 << (b % 8)
		}
		return
	}
	var v uint32 // the last three bytes, the newest highest, as trigramBit has them
	for i := 0; i < len(t); i++ {
		c := t[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		v = v>>8 | uint32(c)<<16
		if i >= 2 {
			b := v * 0x9E3779B1 >> shift
			sig[b/8] |= 1 << (b % 8)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func trigramBit(a, b, c byte, shift int) uint32 {
	return (uint32(a) | uint32(b)<<8 | uint32(c)<<16) * 0x9E3779B1 >> shift
}

// mayContain reports whether a lower-cased needle can be in the text the
// signature was made of.
func mayContain(sig []byte, needle string) bool {
	if len(sig) == 0 || len(sig)&(len(sig)-1) != 0 {
		return true // none, or damaged: read the message
	}
	shift := 32 - bits.TrailingZeros(uint(len(sig)*8))
	for i := 0; i+3 <= len(needle); i++ {
		b := trigramBit(needle[i], needle[i+1], needle[i+2], shift)
		if sig[b/8]&(1<<(b%8)) == 0 {
			return false
		}
	}
	return true
}

// startsIn reports whether needle could begin inside prefix (the header
// lines the store keeps for the mailbox before the body, which delivery's
// signature never saw): a match of TEXT in the header that starts there.
func startsIn(prefix, needle string) bool {
	if strings.Contains(prefix, "=?") {
		return true // an encoded word: the decoded header could differ
	}
	for i := range len(prefix) {
		if strings.HasPrefix(needle, prefix[i:]) || strings.HasPrefix(prefix[i:], needle) {
			return true
		}
	}
	return false
}

// mayMatchText reports whether a message may satisfy the criteria's TEXT
// and BODY parts, given its signature and lower-cased prefix: false only
// when it cannot. Criteria under NOT do not narrow.
func mayMatchText(c *goimap.SearchCriteria, sig, prefix []byte) bool {
	for _, needle := range c.Body {
		if !mayContain(sig, strings.ToLower(needle)) {
			return false
		}
	}
	for _, needle := range c.Text {
		n := strings.ToLower(needle)
		if !mayContain(sig, n) && !startsIn(strings.ToLower(string(prefix)), n) {
			return false
		}
	}
	for _, or := range c.Or {
		if !mayMatchText(&or[0], sig, prefix) && !mayMatchText(&or[1], sig, prefix) {
			return false
		}
	}
	return true
}
