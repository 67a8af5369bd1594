package imap

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// transcript is a raw IMAP connection: the exact lines the server writes.
type transcript struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (ts *testServer) raw(t *testing.T, user string) *transcript {
	t.Helper()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tr := &transcript{t: t, conn: conn, r: bufio.NewReader(conn)}
	tr.line()
	tr.cmd("l LOGIN " + user + "@contoso.test " + user + "-pw")
	tr.cmd("s SELECT INBOX")
	return tr
}

func (tr *transcript) line() string {
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
func (tr *transcript) cmd(c string) []string {
	tr.t.Helper()
	if _, err := tr.conn.Write([]byte(c + "\r\n")); err != nil {
		tr.t.Fatal(err)
	}
	tag, _, _ := strings.Cut(c, " ")
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
	tr := ts.raw(t, "anna")
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
