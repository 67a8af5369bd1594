package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
)

func TestBadLineEnding(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                          "",
		"a\r\nb\r\n":                "",
		"a\nb":                      "bare LF",
		"\n":                        "bare LF",
		"a\r\n\r\nbody\nmore\r\n":   "bare LF",
		"no line end at all":        "",
		"a\r\nb\r":                  "bare CR",
		"a\rb\r\n":                  "bare CR",
		"\r\r\n":                    "bare CR",
		"a\x00b\r\n":                "NUL",
		"x\r\n.\nMAIL FROM:<e>\r\n": "bare LF",
		"x\r\n.\rMAIL FROM:<e>\r\n": "bare CR",
	} {
		if got := badLineEnding([]byte(in)); got != want {
			t.Errorf("badLineEnding(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzBadLineEnding checks the scanner against the plain definition: every
// CR is followed by LF, every LF preceded by CR, and there is no NUL.
func FuzzBadLineEnding(f *testing.F) {
	f.Add([]byte("a\r\nb\nc"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte("a\rb\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		clean := !bytes.ContainsRune(b, 0) &&
			bytes.Count(b, []byte("\r")) == bytes.Count(b, []byte("\r\n")) &&
			bytes.Count(b, []byte("\n")) == bytes.Count(b, []byte("\r\n"))
		if got := badLineEnding(b); (got == "") != clean {
			t.Fatalf("badLineEnding(%q) = %q, want clean=%v", b, got, clean)
		}
	})
}

func TestLoginMechanism(t *testing.T) {
	t.Parallel()
	var gotUser, gotPass string
	auth := func(u, p string) error {
		gotUser, gotPass = u, p
		if p != "right" {
			return errors.New("no")
		}
		return nil
	}
	s := newLoginServer(auth)
	if ch, done, err := s.Next(nil); string(ch) != "Username:" || done || err != nil {
		t.Fatalf("first challenge %q %v %v", ch, done, err)
	}
	if ch, done, err := s.Next([]byte("anna@contoso.test")); string(ch) != "Password:" || done || err != nil {
		t.Fatalf("second challenge %q %v %v", ch, done, err)
	}
	if _, done, err := s.Next([]byte("right")); !done || err != nil || gotUser != "anna@contoso.test" || gotPass != "right" {
		t.Fatalf("final: %v %v %q %q", done, err, gotUser, gotPass)
	}
	// With the user name as initial response, and a wrong password.
	s = newLoginServer(auth)
	if ch, _, _ := s.Next([]byte("bo")); !bytes.Equal(ch, []byte("Password:")) {
		t.Fatalf("challenge after initial response %q", ch)
	}
	if _, _, err := s.Next([]byte("wrong")); err == nil {
		t.Fatal("wrong password accepted")
	}
}

// TestServerLogLevels: a client resetting or closing its connection is
// routine (DEBUG); anything else go-smtp reports is a WARN.
func TestServerLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := printfLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf("error handling %v: %v", "127.0.0.1:1", fmt.Errorf("read tcp: %w", syscall.ECONNRESET))
	l.Printf("error handling %v: %v", "127.0.0.1:1", errors.New("something else"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[1], "level=WARN") {
		t.Fatalf("log:\n%s", buf.String())
	}
}
