package imap

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// TestStructureMatchesGoIMAP checks, on well-formed messages within the
// bounds, that the one-pass description gives what go-imap's nested
// readers give: the same BODYSTRUCTURE and the same bytes for every
// section of every part.
func TestStructureMatchesGoIMAP(t *testing.T) {
	t.Parallel()
	msgs := []string{multipartMessage, strings.ReplaceAll(multipartMessage, "\n", "\r\n"), "Subject: x\r\n\r\nbody\r\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var b strings.Builder
		b.WriteString("From: a@example.org\r\nSubject: generated\r\n")
		randomEntity(&b, rng, 0, new(int))
		msgs = append(msgs, b.String())
	}
	for i, m := range msgs {
		msg := []byte(m)
		_, got := parseMessage(msg)
		want := imapserver.ExtractBodyStructure(bytes.NewReader(msg))
		mendStructure(want)
		normalize(got)
		normalize(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d: structure differs from go-imap's\n%s\ngot  %s\nwant %s", i, msg, dumpStructure(got), dumpStructure(want))
		}
		src := &sections{msg: msg}
		for _, path := range append([][]int{nil}, partPaths(want, nil)...) {
			for _, section := range []*goimap.FetchItemBodySection{
				{Part: path},
				{Part: path, Specifier: goimap.PartSpecifierMIME},
				{Part: path, Specifier: goimap.PartSpecifierHeader},
				{Part: path, Specifier: goimap.PartSpecifierText},
				{Part: path, Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"subject", "Content-Type"}},
				{Part: path, Specifier: goimap.PartSpecifierHeader, HeaderFieldsNot: []string{"FROM"}},
				{Part: path, Partial: &goimap.SectionPartial{Offset: 3, Size: 10}},
			} {
				if len(path) == 0 && section.Specifier != goimap.PartSpecifierHeader && section.Specifier != goimap.PartSpecifierText {
					// No MIME header for the message; BODY[] and its
					// partials are the stored bytes, where go-imap
					// rewrites the header's line ends.
					continue
				}
				if got, want := src.body(section), imapserver.ExtractBodySection(bytes.NewReader(msg), section); !bytes.Equal(got, want) {
					t.Fatalf("message %d BODY[%v.%s %v %v] = %q, go-imap says %q\n%s", i, path, section.Specifier, section.HeaderFields, section.HeaderFieldsNot, got, want, msg)
				}
			}
			bin := &goimap.FetchItemBinarySection{Part: path}
			// go-imap converts a text part's charset to UTF-8, which BINARY
			// should not do (TestBinaryUndoesOnlyTransferEncoding).
			if bytes.Contains(msg, []byte("iso-8859-1")) {
				continue
			}
			if got, want := src.binary(bin), imapserver.ExtractBinarySection(bytes.NewReader(msg), bin); !bytes.Equal(got, want) {
				t.Fatalf("message %d BINARY[%v] = %q, go-imap says %q", i, path, got, want)
			}
		}
	}
}

func TestBinaryUndoesOnlyTransferEncoding(t *testing.T) {
	t.Parallel()
	msg := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nK=E6re ven\r\n--b--\r\n")
	src := &sections{msg: msg}
	if got := src.binary(&goimap.FetchItemBinarySection{Part: []int{1}}); string(got) != "K\xe6re ven" {
		t.Fatalf("BINARY[1] = %q", got)
	}
}

// randomEntity writes a random well-formed MIME entity (header and body).
func randomEntity(b *strings.Builder, rng *rand.Rand, depth int, n *int) {
	*n++
	switch k := rng.IntN(6); {
	case k < 2 && depth < 4 && *n < 40:
		sub := []string{"mixed", "alternative", "related"}[rng.IntN(3)]
		boundary := fmt.Sprintf("b-%d-%d", depth, *n)
		fmt.Fprintf(b, "Content-Type: multipart/%s; boundary=%q\r\n\r\npreamble\r\n", sub, boundary)
		for range 1 + rng.IntN(3) {
			fmt.Fprintf(b, "--%s\r\n", boundary)
			randomEntity(b, rng, depth+1, n)
			b.WriteString("\r\n")
		}
		fmt.Fprintf(b, "--%s--\r\nepilogue", boundary)
	case k == 2 && depth < 4:
		b.WriteString("Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nFrom: inner@example.org\r\nSubject: inner\r\n")
		randomEntity(b, rng, depth+1, n)
	case k == 3:
		b.WriteString("Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\nSGVsbG8gd29y\r\nbGQ=")
	case k == 4:
		b.WriteString("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Language: da, en\r\n\r\nK=E6re ven,\r\nhej")
	default:
		b.WriteString("\r\n")
		for range rng.IntN(4) {
			b.WriteString("a line of text\r\n")
		}
	}
}

// partPaths lists the section paths of every part of a structure.
func partPaths(bs goimap.BodyStructure, prefix []int) [][]int {
	var out [][]int
	switch p := bs.(type) {
	case *goimap.BodyStructureMultiPart:
		for i, c := range p.Children {
			path := append(append([]int(nil), prefix...), i+1)
			out = append(out, path)
			out = append(out, partPaths(c, path)...)
		}
	case *goimap.BodyStructureSinglePart:
		if len(prefix) == 0 {
			out = append(out, []int{1})
		}
		if m := p.MessageRFC822; m != nil && len(prefix) > 0 {
			if _, multi := m.BodyStructure.(*goimap.BodyStructureMultiPart); multi {
				out = append(out, partPaths(m.BodyStructure, prefix)...)
			} else {
				out = append(out, append(append([]int(nil), prefix...), 1))
			}
		}
	}
	return out
}

func dumpStructure(bs goimap.BodyStructure) string {
	switch p := bs.(type) {
	case *goimap.BodyStructureMultiPart:
		var parts []string
		for _, c := range p.Children {
			parts = append(parts, dumpStructure(c))
		}
		return fmt.Sprintf("multi(%s %v ext=%+v)[%s]", p.Subtype, p.Extended.Params, *p.Extended, strings.Join(parts, " "))
	case *goimap.BodyStructureSinglePart:
		s := fmt.Sprintf("%s/%s%v id=%q d=%q enc=%q size=%d text=%+v ext=%+v", p.Type, p.Subtype, p.Params, p.ID, p.Description, p.Encoding, p.Size, p.Text, *p.Extended)
		if m := p.MessageRFC822; m != nil {
			s += fmt.Sprintf(" msg(env=%+v lines=%d %s)", *m.Envelope, m.NumLines, dumpStructure(m.BodyStructure))
		}
		return s
	}
	return "?"
}

// normalize makes empty parameter lists nil and gives untyped parts the
// RFC 2045 default charset, which go-imap leaves out and we give.
func normalize(bs goimap.BodyStructure) {
	switch p := bs.(type) {
	case *goimap.BodyStructureMultiPart:
		if len(p.Extended.Params) == 0 {
			p.Extended.Params = nil
		}
		for _, c := range p.Children {
			normalize(c)
		}
	case *goimap.BodyStructureSinglePart:
		if len(p.Params) == 0 {
			p.Params = nil
		}
		if p.Type == "text" && p.Subtype == "plain" && p.Params == nil {
			p.Params = map[string]string{"charset": "us-ascii"}
		}
		if m := p.MessageRFC822; m != nil {
			normalize(m.BodyStructure)
		}
	}
}
