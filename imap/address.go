package imap

import (
	"mime"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// parseAddressList reads an RFC 5322 address list (with the obsolete forms
// of §4.4) into IMAP envelope addresses. Groups keep their syntax as RFC
// 3501 §7.4.2 writes it: a start marker (the group name as mailbox, no
// host), the members, an end marker (all empty). net/mail, under go-message
// and go-imap, flattens groups and refuses obsolete routes
// (<@route:user@domain>); no library keeps them. A route is read and not
// kept: go-imap writes NIL for an address's route.
//
// Malformed addresses are skipped; the rest of the list is kept.
func parseAddressList(s string) []goimap.Address {
	p := addrParser{toks: tokenize(s)}
	var out []goimap.Address
	for !p.done() {
		if p.special(',') || p.special(';') {
			p.i++
			continue
		}
		start := p.i
		phrase := p.phrase()
		if p.special(':') {
			p.i++
			out = append(out, p.group(phraseText(phrase))...)
			continue
		}
		p.i = start
		if a, ok := p.mailbox(); ok {
			out = append(out, a)
		}
	}
	return out
}

// group reads a group's members, up to its ';'. A group without a name
// cannot be marked (its start would read as an end): its members stand
// alone.
func (p *addrParser) group(name string) []goimap.Address {
	var out []goimap.Address
	if name != "" {
		out = append(out, goimap.Address{Mailbox: name})
	}
	for !p.done() && !p.special(';') {
		if p.special(',') {
			p.i++
			continue
		}
		if a, ok := p.mailbox(); ok {
			out = append(out, a)
		}
	}
	p.i++ // the ';'
	if name != "" {
		out = append(out, goimap.Address{})
	}
	return out
}

// token is a lexical unit of an address list: a word (atom, quoted string
// or domain literal) or one special character. Comments and white space
// are dropped.
type token struct {
	text    string
	special byte // 0 for a word
	quoted  bool // the word was a quoted string
}

func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			i = skipComment(s, i)
		case c == '"':
			text, next := readQuoted(s, i+1, '"')
			toks = append(toks, token{text: text, quoted: true})
			i = next
		case c == '[':
			text, next := readQuoted(s, i+1, ']')
			toks = append(toks, token{text: "[" + text + "]"})
			i = next
		case strings.IndexByte("<>@,;:.", c) >= 0:
			toks = append(toks, token{special: c})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n()\"[<>@,;:.", s[j]) < 0 {
				j++
			}
			if j == i {
				// A stray ')': not part of any token.
				i++
				continue
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks
}

// skipComment returns the index after the comment opening at s[i]; comments
// nest (RFC 5322 §3.2.2).
func skipComment(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// readQuoted reads up to the closing byte, undoing quoted pairs, and
// returns the text and the index after the closing byte.
func readQuoted(s string, i int, end byte) (string, int) {
	var b strings.Builder
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == end:
			return b.String(), i + 1
		case c == '\r' || c == '\n':
			// Folding inside a quoted string is not part of it.
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), len(s)
}

type addrParser struct {
	toks []token
	i    int
}

func (p *addrParser) done() bool { return p.i >= len(p.toks) }

func (p *addrParser) special(c byte) bool { return !p.done() && p.toks[p.i].special == c }

// phrase reads words and dots (obs-phrase), as a display name or the
// local part of a bare addr-spec.
func (p *addrParser) phrase() []token {
	start := p.i
	for !p.done() && (p.toks[p.i].special == 0 || p.toks[p.i].special == '.') {
		p.i++
	}
	return p.toks[start:p.i]
}

// mailbox reads a name-addr or an addr-spec, and everything up to the next
// ',' or ';' when it is malformed.
func (p *addrParser) mailbox() (goimap.Address, bool) {
	phrase := p.phrase()
	var a goimap.Address
	ok := false
	switch {
	case p.special('<'):
		p.i++
		a, ok = p.angleAddr()
		a.Name = decodeWords(phraseText(phrase))
	case p.special('@') && len(phrase) > 0:
		p.i++
		a.Mailbox, a.Host = localPart(phrase), p.domain()
		ok = a.Host != ""
	}
	if !p.done() && !p.special(',') && !p.special(';') {
		ok = false
	}
	for !p.done() && !p.special(',') && !p.special(';') {
		p.i++
	}
	return a, ok
}

// angleAddr reads what follows '<': an optional obsolete route, the
// addr-spec and '>'.
func (p *addrParser) angleAddr() (goimap.Address, bool) {
	if p.special('@') {
		// obs-route: "@" domain *("," ["@" domain]) ":"
		for !p.done() && !p.special(':') && !p.special('>') {
			p.i++
		}
		if !p.special(':') {
			return goimap.Address{}, false
		}
		p.i++
	}
	local := p.phrase()
	if len(local) == 0 || !p.special('@') {
		return goimap.Address{}, false
	}
	p.i++
	a := goimap.Address{Mailbox: localPart(local), Host: p.domain()}
	if !p.special('>') || a.Host == "" {
		return goimap.Address{}, false
	}
	p.i++
	return a, true
}

// domain reads a dot-atom or domain literal.
func (p *addrParser) domain() string {
	var b strings.Builder
	for !p.done() && (p.toks[p.i].special == 0 && !p.toks[p.i].quoted || p.toks[p.i].special == '.') {
		if p.toks[p.i].special == '.' {
			b.WriteByte('.')
		} else {
			b.WriteString(p.toks[p.i].text)
		}
		p.i++
	}
	return b.String()
}

// localPart writes a local part back without comments or white space,
// quoting the words that were quoted.
func localPart(words []token) string {
	var b strings.Builder
	for _, t := range words {
		switch {
		case t.special == '.':
			b.WriteByte('.')
		case t.quoted:
			b.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t.text) + `"`)
		default:
			b.WriteString(t.text)
		}
	}
	return b.String()
}

// phraseText joins a phrase's words with single spaces (a dot, in
// obs-phrase "J. R. Doe", sticks to the word before it).
func phraseText(words []token) string {
	var b strings.Builder
	for i, t := range words {
		if t.special == '.' {
			b.WriteByte('.')
			continue
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// decodeWords decodes RFC 2047 encoded words (in a display name, a
// subject), in any charset go-message knows.
func decodeWords(s string) string {
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	out, err := dec.DecodeHeader(s)
	if err != nil {
		return s
	}
	return out
}

// envelopeOf is go-imap's ExtractEnvelope with addresses that keep their
// groups, and header text decoded in any charset go-message knows.
func envelopeOf(h textproto.Header) *goimap.Envelope {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	date, _ := mh.Date()
	subject, _ := mh.Subject()
	inReplyTo, _ := mh.MsgIDList("In-Reply-To")
	messageID, _ := mh.MessageID()
	return &goimap.Envelope{
		Date:      date,
		Subject:   subject,
		From:      parseAddressList(h.Get("From")),
		Sender:    parseAddressList(h.Get("Sender")),
		ReplyTo:   parseAddressList(h.Get("Reply-To")),
		To:        parseAddressList(h.Get("To")),
		Cc:        parseAddressList(h.Get("Cc")),
		Bcc:       parseAddressList(h.Get("Bcc")),
		InReplyTo: inReplyTo,
		MessageID: messageID,
	}
}
