package imap

import (
	"bytes"
	"io"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"postkasse.dev/postkasse/internal/mimetree"
)

// sections answers the BODY[...] and BINARY[...] items of one message. The
// part a section names is found in a tree from one bounded pass over the
// message (made at most once per message), never by go-imap's nested
// readers, which re-read the message once per level of nesting. go-imap
// only serves what needs no MIME parsing: a header, or a message's text.
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

// body returns a BODY[...] section.
func (s *sections) body(section *goimap.FetchItemBodySection) []byte {
	if len(section.Part) == 0 {
		if isWholeMessage(section) {
			return s.msg
		}
		// The header or text of the message: no MIME parsing involved.
		return imapserver.ExtractBodySection(bytes.NewReader(s.msg), section)
	}
	p := s.find(section.Part)
	if p == nil {
		return nil
	}
	inner := &goimap.FetchItemBodySection{
		Specifier: section.Specifier, HeaderFields: section.HeaderFields,
		HeaderFieldsNot: section.HeaderFieldsNot, Partial: section.Partial,
	}
	switch section.Specifier {
	case goimap.PartSpecifierNone:
		return partial(p.Content(s.msg), section.Partial)
	case goimap.PartSpecifierMIME:
		inner.Specifier = goimap.PartSpecifierHeader
	default:
		// HEADER and TEXT of a message/rfc822 part name the embedded
		// message's; of any other part, the part's own.
		if p.Kind == mimetree.Message {
			p = p.Children[0]
		}
	}
	return imapserver.ExtractBodySection(bytes.NewReader(p.Entity(s.msg)), inner)
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
