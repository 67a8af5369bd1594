package imap

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postkasse.dev/postkasse/internal/testcert"
)

// The transcripts of issue 10 points 9 and 11 that go-imap beta.9 gets
// wrong and wireConn works around. Each test is named after the library's
// fault; the raw client reads with a 10 s deadline, under go-imap's 30 s
// command timeout, so a hang fails the test.

// wantBye reads the BYE that ends a rejected connection, then its end: a
// close, or a reset when the client had sent bytes the server never read.
func (rc *rawConn) wantBye() {
	rc.t.Helper()
	if l := rc.line(); !strings.HasPrefix(l, "* BYE ") {
		rc.t.Fatalf("want BYE, got %q", l)
	}
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := rc.r.ReadString('\n'); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		rc.t.Fatalf("want the connection closed, got %q, %v", rest, err)
	}
}

// TestDecoderLiteralDropsTooBigBeforeLogin (11): go-imap's Decoder.Literal
// drops checkBufferedLiteral's TOOBIG and waits for data the client, never
// sent a "+", will not send.
func TestDecoderLiteralDropsTooBigBeforeLogin(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "")
	a.send("t1 LOGIN {4294967295}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t1 BAD [TOOBIG] ") {
		t.Fatalf("LOGIN with a 4 GB literal: %q", l)
	}
	a.wantBye()
}

// TestDecoderLiteralDropsTooBigInSearch (11): the same fault in SEARCH,
// with a synchronizing literal just over go-imap's 4096-byte limit, while
// one at the limit still works and the connection goes on after it.
func TestDecoderLiteralDropsTooBigInSearch(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "Subject: hello\n\nbody\n")
	a := ts.raw(t, "anna")
	a.ok("SELECT INBOX")

	a.send("t2 SEARCH BODY {4096}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("SEARCH with a 4096-byte literal: %q", l)
	}
	a.send(strings.Repeat("x", 4096) + "\r\n")
	untagged, tagged := a.until("t2")
	if !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SEARCH with a 4096-byte literal: %q %s", untagged, tagged)
	}

	a.send("t3 SEARCH BODY {4097}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t3 BAD [TOOBIG] ") {
		t.Fatalf("SEARCH with a 4097-byte literal: %q", l)
	}
	a.wantBye()
}

// TestDecoderLiteralReadsNonSyncDataAsCommands (11): with a
// non-synchronizing literal over the limit, go-imap would read the literal
// data as commands; none of it may run.
func TestDecoderLiteralReadsNonSyncDataAsCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	a.ok("SELECT INBOX")
	data := strings.Repeat("x", 4000) + "\r\nt9 CREATE Injected\r\n" + strings.Repeat("y", 2000)
	a.send("t1 SEARCH BODY {" + strconv.Itoa(len(data)) + "+}\r\n" + data + "\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t1 BAD [TOOBIG] ") {
		t.Fatalf("SEARCH with a large non-synchronizing literal: %q", l)
	}
	a.wantBye()
	b := ts.raw(t, "anna")
	for _, l := range b.ok(`LIST "" "Injected"`) {
		t.Errorf("literal data ran as a command: %q", l)
	}
}

// TestAppendReadsRefusedNonSyncDataAsCommands (11): go-imap's handleAppend
// refuses a non-synchronizing literal over the append limit without
// reading it, and would then read the message as commands.
func TestAppendReadsRefusedNonSyncDataAsCommands(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, func(o *Options) { o.AppendLimit = 1000 })
	a := ts.raw(t, "anna")
	msg := "Subject: big\r\n\r\n" + strings.Repeat("x", 1000) + "\r\nt9 CREATE Injected\r\n"
	a.send("t1 APPEND INBOX {" + strconv.Itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t1 NO [TOOBIG] ") {
		t.Fatalf("APPEND over the limit: %q", l)
	}
	a.wantBye()
	b := ts.raw(t, "anna")
	for _, l := range b.ok(`LIST "" "Injected"`) {
		t.Errorf("message data ran as a command: %q", l)
	}
}

// TestDecoderQuotedAcceptsCRLF (9): go-imap's Decoder.Quoted takes CR and
// LF into a quoted string and waits for its end; a quoted string broken by
// CRLF gets BAD at once.
func TestDecoderQuotedAcceptsCRLF(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	a.send("t1 SELECT \"INBOX\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t1 BAD [CLIENTBUG] ") {
		t.Fatalf("SELECT of a broken quoted string: %q", l)
	}
	a.wantBye()
}

// TestDecoderQuotedAcceptsCRLFAfterIdle (9): a broken quoted string where
// DONE should end IDLE gets BAD at once; the connection then closes
// without a BYE of ours, which could meet an update go-imap is writing.
func TestDecoderQuotedAcceptsCRLFAfterIdle(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	a.ok("SELECT INBOX")
	a.send("t1 IDLE\r\n")
	if l := a.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	a.send("DONE \"\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t1 BAD [CLIENTBUG] ") {
		t.Fatalf("a broken quoted string ending IDLE: %q", l)
	}
	a.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := a.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("want the connection closed, got %q, %v", rest, err)
	}
}

// TestWireKeepsLiteralData: what looks like framing inside literal data
// (an unbalanced quote, a large literal announcement, a command) is data,
// in APPEND and in a small literal; the connection goes on.
func TestWireKeepsLiteralData(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	msg := "Subject: \"odd\r\n\r\nt8 SEARCH BODY {99999}\r\nt9 LOGIN \"x\r\n"
	a.send("t1 APPEND INBOX {" + strconv.Itoa(len(msg)) + "}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("APPEND: %q", l)
	}
	a.send(msg + "\r\n")
	if _, tagged := a.until("t1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND: %s", tagged)
	}
	a.send("t2 APPEND INBOX {" + strconv.Itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if _, tagged := a.until("t2"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND with LITERAL+: %s", tagged)
	}
	a.ok("SELECT INBOX")
	a.send("t3 SEARCH BODY {6}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("SEARCH: %q", l)
	}
	a.send("{9999}\r\n")
	if _, tagged := a.until("t3"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SEARCH for {9999}: %s", tagged)
	}
	// An APPEND over the limit is refused by go-imap itself; no data
	// follows, and the next command is a command.
	a.send("t4 APPEND INBOX {4294967295}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t4 NO [TOOBIG]") {
		t.Fatalf("APPEND of 4 GB: %q", l)
	}
	wantLines(t, "SEARCH after the refused APPEND", a.ok(`SEARCH HEADER Subject "odd"`), []string{"* SEARCH 1 2"})
	a.send("t6 APPEND INBOX {4294967295}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t6 NO [TOOBIG]") {
		t.Fatalf("APPEND of 4 GB: %q", l)
	}
	a.send("t7 SEARCH BODY {5000}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t7 BAD [TOOBIG] ") {
		t.Fatalf("SEARCH with a large literal after a refused APPEND: %q", l)
	}
	a.wantBye()
}

// scriptConn is the network side of a fuzzed wireConn: the client's bytes
// arrive in chunks of a given size, and what the server writes is kept.
type scriptConn struct {
	net.Conn // nil: only Read and Write are used
	in       []byte
	chunk    int
	written  []byte
	discard  bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.in[:min(c.chunk, len(c.in))])
	c.in = c.in[n:]
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	if !c.discard {
		c.written = append(c.written, p...)
	}
	return len(p), nil
}

// FuzzWireConn: whatever the client sends, in whatever chunks, and however
// the server answers synchronizing literals, wireConn never panics and
// hands go-imap exactly the client's bytes, in order; only after a
// rejected line does it hand over a prefix, ending with that line.
func FuzzWireConn(f *testing.F) {
	for _, seed := range []string{
		"a LOGIN {5}\r\nanna pw\r\n",
		"a LOGIN {4294967295}\r\n",
		"a SEARCH BODY {5000+}\r\nxx\r\n",
		"a SELECT \"INBOX\r\nb NOOP\r\n",
		"a APPEND INBOX {10}\r\n\"{99999}\r\n\r\nb NOOP\r\n",
		"a STARTTLS\r\n\x16\x03\x01{99999}\r\n",
		"a NOOP \"x\\\"{1}\"\r\n{0}\r\n\r\n",
	} {
		f.Add([]byte(seed), uint8(3), []byte{0, 1})
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, answers []byte) {
		sc := &scriptConn{in: data, chunk: int(chunk%64) + 1}
		c := newWireConn(sc, 1000)
		var got []byte
		buf := make([]byte, 7)
		var err error
		for n := 0; err == nil; n++ {
			var k int
			k, err = c.Read(buf[:1+n%len(buf)])
			got = append(got, buf[:k]...)
			if c.holding && len(answers) > 0 {
				// The server answers the held literal: "+" or a refusal.
				answer := "+ go\r\n"
				if answers[0]%2 == 1 {
					answer = c.heldTag + " NO refused\r\n"
				}
				answers = answers[1:]
				c.Write([]byte(answer))
			}
		}
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("go-imap read %q, not a prefix of %q", got, data)
		}
		if errors.Is(err, io.EOF) {
			if len(got) != len(data) {
				t.Fatalf("go-imap read %d of %d bytes", len(got), len(data))
			}
			return
		}
		if !isWireError(err) {
			t.Fatalf("read error %v", err)
		}
		if !bytes.HasSuffix(got, []byte("\n")) {
			t.Fatalf("rejected mid-line: %q", got)
		}
	})
}

// TestDecoderLiteralDropsTooBigOverTLS (11): the workaround holds on an
// implicit-TLS listener, where it sits above TLS; logins there still work
// and no STARTTLS is offered.
func TestDecoderLiteralDropsTooBigOverTLS(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t, "127.0.0.1")
	ts := startServerWith(t, func(o *Options) { o.TLSConfig = cert.Server })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.ServeTLS(ln)

	dialTLS := func() *rawConn {
		conn, err := tls.Dial("tcp", ln.Addr().String(), cert.Client)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		rc := &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
		if greeting := rc.line(); !strings.HasPrefix(greeting, "* OK ") || strings.Contains(greeting, "STARTTLS") {
			t.Fatalf("greeting %q", greeting)
		}
		return rc
	}
	a := dialTLS()
	a.ok("LOGIN anna@contoso.test anna-pw")
	a.send("t9 SEARCH BODY {4294967295}\r\n")
	if l := a.line(); !strings.HasPrefix(l, "t9 BAD [TOOBIG] ") {
		t.Fatalf("SEARCH with a 4 GB literal over TLS: %q", l)
	}
	a.wantBye()
}

// BenchmarkWireWrite times what wireConn adds to the server's output: the
// framing of a large FETCH response, envelopes and a message literal.
func BenchmarkWireWrite(b *testing.B) {
	var resp []byte
	for i := range 1000 {
		resp = append(resp, fmt.Sprintf("* %d FETCH (UID %d FLAGS (\\Seen) ENVELOPE (\"Mon, 02 Nov 2026 10:00:00 +0000\" \"message number %d\" ((\"Sender\" NIL \"s\" \"example.org\")) NIL NIL ((NIL NIL \"anna\" \"contoso.test\")) NIL NIL NIL \"<%d@example.org>\") BODY[] {1000}\r\n%s)\r\n", i+1, i+1, i, i, strings.Repeat("x", 1000))...)
	}
	c := newWireConn(&scriptConn{discard: true}, 1000)
	b.SetBytes(int64(len(resp)))
	for b.Loop() {
		for p := resp; len(p) > 0; p = p[min(4096, len(p)):] {
			c.Write(p[:min(4096, len(p))])
		}
	}
}
