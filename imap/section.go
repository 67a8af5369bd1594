package imap

import (
	"bytes"
	"io"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"postkasse.dev/postkasse/internal/mimetree"
)

// sections answers the BODY[...] and BINARY[...] items of one message. The
// part a section names is found in a tree from one bounded pass over the
// message (made at most once per message), never by go-imap's nested
// readers, which re-read the message once per level of nesting.
type sections struct {
	msg  []byte
	root *mimetree.Part
}

func (s *sections) tree() *mimetree.Part {
	if s.root == nil {
		s.root = mimetree.Parse(s.msg)
	}
	return s.root
}

// find returns the part a section path names (RFC 3501 §6.4.5), or nil.
func (s *sections) find(path []int) *mimetree.Part {
	p := s.tree()
	if p.Kind != mimetree.Multipart && len(path) > 0 && path[0] == 1 {
		// Part 1 of a single-part message is its body.
		path = path[1:]
	}
	for _, n := range path {
		if p.Kind == mimetree.Message {
			p = p.Children[0]
		}
		if p.Kind != mimetree.Multipart {
			if n != 1 {
				return nil
			}
			continue
		}
		if n < 1 || n > len(p.Children) {
			return nil
		}
		p = p.Children[n-1]
	}
	return p
}

// body returns a BODY[...] section. Headers are served from the stored
// bytes too: parsing one costs about 3 µs a field, and a message may hold
// millions.
func (s *sections) body(section *goimap.FetchItemBodySection) []byte {
	if isWholeMessage(section) {
		return s.msg
	}
	p := s.find(section.Part)
	if p == nil {
		return nil
	}
	var data []byte
	switch section.Specifier {
	case goimap.PartSpecifierNone:
		if len(section.Part) == 0 {
			data = s.msg
		} else {
			data = p.Content(s.msg)
		}
	case goimap.PartSpecifierMIME:
		data = headerSection(s.msg[p.Start:p.HeaderEnd], nil, nil)
	default:
		// HEADER and TEXT of a message/rfc822 part name the embedded
		// message's; of any other part (or of the message), its own.
		if len(section.Part) > 0 && p.Kind == mimetree.Message {
			p = p.Children[0]
		}
		if section.Specifier == goimap.PartSpecifierText {
			data = p.Content(s.msg)
		} else {
			data = headerSection(s.msg[p.Start:p.HeaderEnd], section.HeaderFields, section.HeaderFieldsNot)
		}
	}
	return partial(data, section.Partial)
}

// headerSection returns a header block's fields, only those named in keep
// when it is not empty, never those named in drop, then the blank line.
func headerSection(block []byte, keep, drop []string) []byte {
	if len(keep) == 0 && len(drop) == 0 {
		return append(crlf(trimBlankLine(block)), "\r\n"...)
	}
	names := make(map[string]bool, len(keep)+len(drop))
	for _, k := range keep {
		names[strings.ToLower(k)] = true
	}
	for _, k := range drop {
		names[strings.ToLower(k)] = false
	}
	var out []byte
	for rest := trimBlankLine(block); len(rest) > 0; {
		field := rest[:fieldLength(rest)]
		rest = rest[len(field):]
		name, _, _ := bytes.Cut(field, []byte(":"))
		want, named := names[strings.ToLower(string(bytes.TrimSpace(name)))]
		if named && want || !named && len(keep) == 0 {
			out = append(out, field...)
		}
	}
	return append(crlf(out), "\r\n"...)
}

// crlf ends every line with CRLF, as go-imap's header writer does for a
// message stored with bare LFs (APPEND takes them).
func crlf(b []byte) []byte {
	if bytes.Count(b, []byte("\n")) == bytes.Count(b, []byte("\r\n")) {
		return b
	}
	out := make([]byte, 0, len(b)+bytes.Count(b, []byte("\n")))
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// fieldLength is the length of the header field at the start of h: its
// line and the continuation lines that follow.
func fieldLength(h []byte) int {
	n := 0
	for {
		i := bytes.IndexByte(h[n:], '\n')
		if i < 0 {
			return len(h)
		}
		n += i + 1
		if n == len(h) || h[n] != ' ' && h[n] != '\t' {
			return n
		}
	}
}

// trimBlankLine removes the blank line that ends a header block.
func trimBlankLine(block []byte) []byte {
	switch {
	case bytes.Equal(block, []byte("\r\n")) || bytes.Equal(block, []byte("\n")):
		return nil
	case bytes.HasSuffix(block, []byte("\r\n\r\n")):
		return block[:len(block)-2]
	case bytes.HasSuffix(block, []byte("\n\n")):
		return block[:len(block)-1]
	}
	return block
}

// binary returns a BINARY[...] section (RFC 3516): the part with its
// transfer encoding undone. Only the transfer encoding: go-message would
// also convert a text part's charset to UTF-8.
func (s *sections) binary(section *goimap.FetchItemBinarySection) []byte {
	p := s.find(section.Part)
	if p == nil {
		return nil
	}
	var buf bytes.Buffer
	if len(section.Part) == 0 {
		if err := textproto.WriteHeader(&buf, p.Header); err != nil {
			return nil
		}
	}
	content := io.Reader(bytes.NewReader(p.Content(s.msg)))
	if p.Kind != mimetree.Multipart {
		h := p.Header.Copy()
		h.Del("Content-Type")
		e, err := gomessage.New(gomessage.Header{Header: h}, content)
		if err != nil {
			return nil
		}
		content = e.Body
	}
	if _, err := io.Copy(&buf, content); err != nil {
		return nil
	}
	return partial(buf.Bytes(), section.Partial)
}

// partial applies a <start.length> suffix, as go-imap does.
func partial(b []byte, p *goimap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset > int64(len(b)) {
		return nil
	}
	size := int64(len(b)) - p.Offset
	if p.Size >= 0 && p.Size < size {
		size = p.Size
	}
	return b[p.Offset : p.Offset+size]
}
