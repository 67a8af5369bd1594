package delivery

import (
	"bytes"
	"testing"
)

func TestToCRLF(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                       "",
		"a\r\nb\r\n":             "a\r\nb\r\n",
		"a\nb\n":                 "a\r\nb\r\n",
		"\n\r\n\n":               "\r\n\r\n\r\n",
		"Subject: x\r\n\nbody\n": "Subject: x\r\n\r\nbody\r\n",
		"lone\rcr\r":             "lone\rcr\r",
	} {
		if got := string(toCRLF([]byte(in))); got != want {
			t.Errorf("toCRLF(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzToCRLF: the result has no bare LF and differs from the input only by
// the CRs it added.
func FuzzToCRLF(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\r\r\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := toCRLF(in)
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, out)
			}
		}
		if !bytes.Equal(bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))) {
			t.Fatalf("toCRLF(%q) = %q changes more than line endings", in, out)
		}
	})
}
