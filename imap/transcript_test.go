package imap

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawConn is a client that speaks IMAP by hand, so a test can state the
// exact lines the server must send.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	tags int
}

// raw connects, reads the greeting and, unless user is "", logs in.
func (ts *testServer) raw(t testing.TB, user string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc := &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	if greeting := rc.line(); !strings.HasPrefix(greeting, "* OK ") {
		t.Fatalf("greeting %q", greeting)
	}
	if user != "" {
		rc.ok("LOGIN " + user + "@contoso.test " + user + "-pw")
	}
	return rc
}

// line reads one response line without its CRLF; a literal it announces
// is read into the line.
func (rc *rawConn) line() string {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out strings.Builder
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("read after %q: %v", out.String()+l, err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		out.WriteString(l)
		n, ok := literalSize(l)
		if !ok {
			return out.String()
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(rc.r, lit); err != nil {
			rc.t.Fatalf("read literal: %v", err)
		}
		out.Write(lit)
	}
}

func literalSize(line string) (int, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
	return n, err == nil
}

// send writes raw bytes.
func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.conn, s); err != nil {
		rc.t.Fatal(err)
	}
}

// do sends a command under a fresh tag and returns the untagged lines and
// the tagged reply without its tag.
func (rc *rawConn) do(cmd string) (untagged []string, tagged string) {
	rc.t.Helper()
	rc.tags++
	tag := fmt.Sprintf("t%d", rc.tags)
	rc.send(tag + " " + cmd + "\r\n")
	return rc.until(tag)
}

// until reads lines up to the one tagged tag.
func (rc *rawConn) until(tag string) (untagged []string, tagged string) {
	rc.t.Helper()
	for {
		l := rc.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed and returns its untagged lines.
func (rc *rawConn) ok(cmd string) []string {
	rc.t.Helper()
	untagged, tagged := rc.do(cmd)
	if !strings.HasPrefix(tagged, "OK") {
		rc.t.Fatalf("%s: %s (untagged %q)", cmd, tagged, untagged)
	}
	return untagged
}

// wantLines fails unless got holds exactly want, in order.
func wantLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// wantContains fails unless got holds each of want, in the given order.
func wantContains(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	at := 0
	for _, w := range want {
		i := slices.Index(got[at:], w)
		if i < 0 {
			t.Fatalf("%s: %q missing (or out of order) in %q", what, w, got)
		}
		at += i + 1
	}
}

// uidValidity finds UIDVALIDITY in SELECT's lines.
func uidValidity(t testing.TB, lines []string) string {
	t.Helper()
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "* OK [UIDVALIDITY "); ok {
			return v[:strings.IndexByte(v, ']')]
		}
	}
	t.Fatalf("no UIDVALIDITY in %q", lines)
	return ""
}
