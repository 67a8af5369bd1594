package imap

import (
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"

	"postkasse.dev/postkasse/internal/mimetree"
)

// parseMessage describes a message for FETCH: its envelope and its body
// structure, from one bounded pass over it (mimetree), so the cost is
// linear in its size however it nests.
func parseMessage(body []byte) (env *goimap.Envelope, bs goimap.BodyStructure) {
	defer func() {
		// The header parsers are outside code fed outside input: a panic
		// there must not lose the message, only its cached structure.
		if recover() != nil {
			env = &goimap.Envelope{}
			bs = plainStructure(uint32(len(body)))
		}
	}()
	root := mimetree.Parse(body)
	env = envelopeOf(root.Header)
	bs = structureOf(root)
	mendStructure(bs)
	return env, bs
}

// structureOf describes a part the way go-imap's ExtractBodyStructure
// does, from the part's header and the offsets mimetree found.
func structureOf(p *mimetree.Part) goimap.BodyStructure {
	h := gomessage.Header{Header: p.Header}
	typ, subtype, _ := strings.Cut(p.MediaType, "/")
	if p.Kind == mimetree.Multipart {
		bs := &goimap.BodyStructureMultiPart{Subtype: subtype}
		for _, c := range p.Children {
			bs.Children = append(bs.Children, structureOf(c))
		}
		bs.Extended = &goimap.BodyStructureMultiPartExt{
			Params:      p.Params,
			Disposition: dispositionOf(h),
			Language:    languagesOf(h),
			Location:    h.Get("Content-Location"),
		}
		return bs
	}
	bs := &goimap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     subtype,
		Params:      p.Params,
		ID:          h.Get("Content-Id"),
		Description: h.Get("Content-Description"),
		Encoding:    h.Get("Content-Transfer-Encoding"),
		Size:        uint32(p.End - p.HeaderEnd),
	}
	if p.Kind == mimetree.Message {
		inner := p.Children[0]
		bs.MessageRFC822 = &goimap.BodyStructureMessageRFC822{
			Envelope:      envelopeOf(inner.Header),
			BodyStructure: structureOf(inner),
			NumLines:      int64(p.Lines),
		}
	}
	if typ == "text" {
		bs.Text = &goimap.BodyStructureText{NumLines: int64(p.Lines)}
	}
	bs.Extended = &goimap.BodyStructureSinglePartExt{
		Disposition: dispositionOf(h),
		Language:    languagesOf(h),
		Location:    h.Get("Content-Location"),
	}
	return bs
}

func dispositionOf(h gomessage.Header) *goimap.BodyStructureDisposition {
	disp, params, _ := h.ContentDisposition()
	if disp == "" {
		return nil
	}
	return &goimap.BodyStructureDisposition{Value: disp, Params: params}
}

func languagesOf(h gomessage.Header) []string {
	v := h.Get("Content-Language")
	if v == "" {
		return nil
	}
	l := strings.Split(v, ",")
	for i, lang := range l {
		l[i] = strings.TrimSpace(lang)
	}
	return l
}

func plainStructure(size uint32) goimap.BodyStructure {
	return &goimap.BodyStructureSinglePart{
		Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
		Encoding: "7bit", Size: size, Text: &goimap.BodyStructureText{},
	}
}

// mendStructure gives untyped parts the RFC 2045 default text/plain and
// fills empty encodings with 7bit.
func mendStructure(bs goimap.BodyStructure) {
	switch p := bs.(type) {
	case *goimap.BodyStructureSinglePart:
		if p.Type == "" || p.Subtype == "" {
			p.Type, p.Subtype = "text", "plain"
			if p.Params == nil {
				p.Params = map[string]string{"charset": "us-ascii"}
			}
			if p.Text == nil {
				p.Text = &goimap.BodyStructureText{}
			}
		}
		if p.Encoding == "" {
			p.Encoding = "7bit"
		}
		if p.MessageRFC822 != nil && p.MessageRFC822.BodyStructure != nil {
			mendStructure(p.MessageRFC822.BodyStructure)
		}
	case *goimap.BodyStructureMultiPart:
		if p.Subtype == "" {
			p.Subtype = "mixed"
		}
		if len(p.Children) == 0 {
			// RFC 3501 requires at least one part.
			p.Children = append(p.Children, plainStructure(0))
		}
		for _, c := range p.Children {
			mendStructure(c)
		}
	}
}
