package imap

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// mimeTranscript is a raw IMAP connection: the exact lines the server writes.
type mimeTranscript struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (ts *testServer) rawMIME(t *testing.T, user string) *mimeTranscript {
	t.Helper()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tr := &mimeTranscript{t: t, conn: conn, r: bufio.NewReader(conn)}
	tr.line()
	tr.cmd("l LOGIN " + user + "@contoso.test " + user + "-pw")
	tr.cmd("s SELECT INBOX")
	return tr
}

func (tr *mimeTranscript) line() string {
	tr.t.Helper()
	tr.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := tr.r.ReadString('\n')
	if err != nil {
		tr.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a tagged command and returns the untagged lines of its answer;
// it fails unless the answer is OK.
func (tr *mimeTranscript) cmd(c string) []string {
	tr.t.Helper()
	if _, err := tr.conn.Write([]byte(c + "\r\n")); err != nil {
		tr.t.Fatal(err)
	}
	tag, _, _ := strings.Cut(c, " ")
	return tr.answer(tag, c)
}

// answer reads the answer to the command c tagged tag.
func (tr *mimeTranscript) answer(tag, c string) []string {
	tr.t.Helper()
	var out []string
	for {
		l := tr.line()
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				tr.t.Fatalf("%s: %s", c, l)
			}
			return out
		}
		out = append(out, l)
	}
}

// TestEnvelopeKeepsGroupsTranscript: ENVELOPE keeps RFC 5322 groups, empty
// groups, and the address of an obsolete route (go-imap writes NIL for the
// route itself, and a space between addresses).
func TestEnvelopeKeepsGroupsTranscript(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "From: <@route:user@domain>\n"+
		"To: group: g1@d1.org, g2@d2.org;\n"+
		"Cc: group:;\n"+
		"Bcc: Anna <anna@contoso.test>, undisclosed-recipients:;\n"+
		"Subject: groups\n"+
		"Date: Mon, 02 Nov 2026 10:00:00 +0000\n"+
		"Message-ID: <groups@example.org>\n\nbody\n")
	tr := ts.rawMIME(t, "anna")
	got := tr.cmd("f FETCH 1 (ENVELOPE)")
	want := `* 1 FETCH (ENVELOPE ("Mon, 02 Nov 2026 10:00:00 +0000" "groups" ` +
		`((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) ` +
		`((NIL NIL "group" NIL) (NIL NIL "g1" "d1.org") (NIL NIL "g2" "d2.org") (NIL NIL NIL NIL)) ` +
		`((NIL NIL "group" NIL) (NIL NIL NIL NIL)) ` +
		`(("Anna" NIL "anna" "contoso.test") (NIL NIL "undisclosed-recipients" NIL) (NIL NIL NIL NIL)) ` +
		`NIL "<groups@example.org>"))`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// cmdLiteral sends a tagged command whose last argument is a synchronizing
// literal, waiting for the continuation as a client must.
func (tr *mimeTranscript) cmdLiteral(c, literal string) []string {
	tr.t.Helper()
	if _, err := fmt.Fprintf(tr.conn, "%s{%d}\r\n", c, len(literal)); err != nil {
		tr.t.Fatal(err)
	}
	if l := tr.line(); !strings.HasPrefix(l, "+") {
		tr.t.Fatalf("%s: no continuation: %s", c, l)
	}
	if _, err := tr.conn.Write([]byte(literal + "\r\n")); err != nil {
		tr.t.Fatal(err)
	}
	tag, _, _ := strings.Cut(c, " ")
	return tr.answer(tag, c)
}

// TestSearchAddressesAndCharsetsTranscript: FROM matches the address as
// the envelope has it, without comments; text in windows-1252, koi8-r and
// iso-8859-1 is found by a UTF-8 SEARCH.
func TestSearchAddressesAndCharsetsTranscript(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, m := range []string{
		"From: <user-from (comment)@ (comment) domain.org>\nTo: Anna <anna@contoso.test>\nSubject: commented\n\nplain\n",
		"From: a@example.org\nTo: g: x@example.org;\nSubject: =?windows-1252?q?Caf=E9_cr=E8me?=\n\nplain\n",
		"From: b@example.org\nSubject: latin-1 body\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe aus K=F6ln\n",
		"From: c@example.org\nSubject: =?koi8-r?b?8NLJ18XUIM3J0g==?=\n\nplain\n",
		"From: d@example.org\nSubject: none of them\n\nplain user-from domain.org Koln\n",
	} {
		ts.deliver(t, "anna", m)
	}
	tr := ts.rawMIME(t, "anna")
	for _, tc := range []struct {
		cmd, literal, want string
	}{
		{"a SEARCH FROM user-from@domain.org", "", "* SEARCH 1"},
		{"b SEARCH FROM \"USER-FROM@domain.org\"", "", "* SEARCH 1"},
		{"c SEARCH TO \"Anna <anna@contoso.test>\"", "", "* SEARCH 1"},
		{"d SEARCH TO x@example.org", "", "* SEARCH 2"},
		{"e SEARCH CHARSET UTF-8 SUBJECT ", "café", "* SEARCH 2"},
		{"f SEARCH CHARSET UTF-8 BODY ", "köln", "* SEARCH 3"},
		{"g SEARCH CHARSET UTF-8 TEXT ", "grüße", "* SEARCH 3"},
		{"h SEARCH CHARSET UTF-8 SUBJECT ", "привет", "* SEARCH 4"},
		{"i SEARCH CHARSET UTF-8 TEXT ", "МИР", "* SEARCH 4"},
	} {
		var got []string
		if tc.literal == "" {
			got = tr.cmd(tc.cmd)
		} else {
			got = tr.cmdLiteral(tc.cmd, tc.literal)
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s%s: got %q, want %q", tc.cmd, tc.literal, got, tc.want)
		}
	}
}
