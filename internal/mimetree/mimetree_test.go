package mimetree

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// nested is a message nested depth deep in multiparts, with a text leaf.
func nested(depth int) []byte {
	var b strings.Builder
	b.WriteString("Subject: deep\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nleaf\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

func TestNestingFlattenedAtMaxDepth(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1, 1000} {
		msg := nested(depth)
		p := Parse(msg)
		for p.Kind == Multipart {
			if len(p.Children) != 1 {
				t.Fatalf("depth %d: part at depth %d has %d children", depth, p.Depth, len(p.Children))
			}
			p = p.Children[0]
		}
		if depth <= MaxDepth {
			if p.Kind != Leaf || p.MediaType != "text/plain" || string(p.Content(msg)) != "leaf" {
				t.Fatalf("depth %d: innermost %+v %q", depth, p, p.Content(msg))
			}
			continue
		}
		if p.Depth != MaxDepth || p.Kind != Flattened || p.MediaType != "application/octet-stream" {
			t.Fatalf("depth %d: innermost at depth %d kind %d %s", depth, p.Depth, p.Kind, p.MediaType)
		}
		// The flattened part holds everything down to its own closing
		// delimiter's newline, untouched.
		want := msg[bytes.Index(msg, []byte(fmt.Sprintf("boundary=\"b%d\"\r\n\r\n", MaxDepth)))+len(fmt.Sprintf("boundary=\"b%d\"\r\n\r\n", MaxDepth)):]
		want = want[:bytes.Index(want, []byte(fmt.Sprintf("\r\n--b%d--", MaxDepth-1)))]
		if !bytes.Equal(p.Content(msg), want) {
			t.Fatalf("depth %d: flattened content %q, want %q", depth, p.Content(msg)[:40], want[:40])
		}
	}
}

func TestPartsBeyondMaxPartsAreOne(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	for i := range 2 * MaxParts {
		fmt.Fprintf(&b, "--b\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--b--\r\n")
	msg := []byte(b.String())
	root := Parse(msg)
	if len(root.Children) != MaxParts {
		t.Fatalf("%d children, want %d", len(root.Children), MaxParts)
	}
	if got := string(root.Children[MaxParts-2].Content(msg)); got != fmt.Sprintf("part %d", MaxParts-2) {
		t.Fatalf("last described part: %q", got)
	}
	rest := root.Children[MaxParts-1]
	if rest.Kind != Flattened || rest.End != len(msg) || !bytes.HasPrefix(rest.Content(msg), []byte("\r\npart 9999\r\n--b\r\n")) {
		t.Fatalf("rest: kind %d end %d/%d %q", rest.Kind, rest.End, len(msg), rest.Content(msg)[:30])
	}
	if rest.Lines != bytes.Count(rest.Content(msg), []byte("\n")) || root.End != len(msg) {
		t.Fatalf("rest lines %d, root end %d", rest.Lines, root.End)
	}
}

// FuzzParse checks the tree's invariants on any input: parts lie inside
// their parents, in order, within the bounds, with their lines counted.
func FuzzParse(f *testing.F) {
	f.Add(nested(3))
	f.Add([]byte("Content-Type: multipart/digest; boundary=x\n\n--x\n\nSubject: a\n\nbody\n--x--\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n--q--"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/mixed; boundary=a\n\n--a\n--a--\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		root := Parse(msg)
		if root.Start != 0 || root.End != len(msg) {
			t.Fatalf("root covers %d..%d of %d", root.Start, root.End, len(msg))
		}
		n := 0
		var check func(p *Part)
		check = func(p *Part) {
			n++
			if p.Start > p.HeaderEnd || p.HeaderEnd > p.End || p.Depth > MaxDepth {
				t.Fatalf("part %+v", p)
			}
			if p.Lines != bytes.Count(p.Content(msg), []byte("\n")) {
				t.Fatalf("part %d..%d: %d lines, content has %d", p.HeaderEnd, p.End, p.Lines, bytes.Count(p.Content(msg), []byte("\n")))
			}
			last := p.HeaderEnd
			for _, c := range p.Children {
				if c.Start < last || c.End > p.End || c.Depth != p.Depth+1 {
					t.Fatalf("child %d..%d of %d..%d after %d", c.Start, c.End, p.HeaderEnd, p.End, last)
				}
				last = c.End
				check(c)
			}
		}
		check(root)
		if n > MaxParts+1 {
			t.Fatalf("%d parts", n)
		}
	})
}
