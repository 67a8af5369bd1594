package queue

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/store"
)

// wireLog is what a sink's connections received and sent, in the order it
// happened. Bytes are logged as they arrive, before the server gets to read
// them, and before they are sent: so a received line logged before a sent
// one did reach the server before the server answered.
type wireLog struct {
	mu     sync.Mutex
	events []wireEvent
}

type wireEvent struct {
	sent bool // written by the server; otherwise received from the client
	data string
}

func (l *wireLog) add(sent bool, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, wireEvent{sent: sent, data: string(p)})
}

// at returns the position of the event with which the bytes sent (or
// received) first contain s, or -1.
func (l *wireLog) at(sent bool, s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var stream strings.Builder
	for i, e := range l.events {
		if e.sent != sent {
			continue
		}
		stream.WriteString(e.data)
		if strings.Contains(stream.String(), s) {
			return i
		}
	}
	return -1
}

func (l *wireLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		dir := "C: "
		if e.sent {
			dir = "S: "
		}
		b.WriteString(dir + strings.ReplaceAll(strings.TrimSuffix(e.data, "\r\n"), "\r\n", "\r\n"+dir) + "\n")
	}
	return b.String()
}

// recordedConn logs a sink's connection into log. A goroutine reads from
// the client as soon as bytes arrive, whether or not the server is reading,
// so that the log shows when the client sent them. Bytes equal to hide are
// cut from what the server writes.
type recordedConn struct {
	net.Conn
	log     *wireLog
	hide    []byte
	in      chan []byte
	err     error // why reading ended; set before in is closed
	pending []byte
}

func recordConn(c net.Conn, log *wireLog, hide string) net.Conn {
	rc := &recordedConn{Conn: c, log: log, hide: []byte(hide), in: make(chan []byte, 1024)}
	go rc.receive()
	return rc
}

func (c *recordedConn) receive() {
	for {
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		if n > 0 {
			c.log.add(false, buf[:n])
			c.in <- buf[:n]
		}
		if err != nil {
			c.err = err
			close(c.in)
			return
		}
	}
}

func (c *recordedConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		b, ok := <-c.in
		if !ok {
			return 0, c.err
		}
		c.pending = b
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *recordedConn) Write(p []byte) (int, error) {
	out := p
	if len(c.hide) > 0 {
		out = bytes.ReplaceAll(p, c.hide, nil)
	}
	if len(out) == 0 {
		return len(p), nil
	}
	c.log.add(true, out)
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// TestPipelining delivers to three recipients of one domain, the middle one
// refused, to a server that offers PIPELINING and to one that does not: the
// envelope goes out in one write to the first and one command at a time to
// the second, with the same per-recipient results.
func TestPipelining(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		prefix     string
		pipelining bool
	}{
		{"offered", "127.3.50", true},
		{"not offered", "127.3.51", false},
	}
	rcpts := []string{"bo@contoso.test", "nobody@contoso.test", "cy@contoso.test"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wire := &wireLog{}
			hide := ""
			if !tt.pipelining {
				hide = "250-PIPELINING\r\n"
			}
			nw := newTestNet(t, tt.prefix)
			mx := nw.sink(1, sinkConfig{
				rcpt: func(to string) error {
					if to == "nobody@contoso.test" {
						return reject(550, gosmtp.EnhancedCode{5, 1, 1}, "No such user here")
					}
					return nil
				},
				wrap: func(c net.Conn) net.Conn { return recordConn(c, wire, hide) },
			})
			z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
			e := newEnv(t, nw.port, z, nil)
			body := testMessage("anna@postkasse.test", "bo, nobody, cy", "pipelined")
			id := e.enqueue("anna@postkasse.test", body, rcpts...)
			e.flush()
			defer func() {
				if t.Failed() {
					t.Logf("conversation:\n%s", wire)
				}
			}()

			if _, gone := e.state(id); !gone {
				t.Fatal("message still queued")
			}
			got := mx.accepted()
			if len(got) != 1 || mx.connections() != 1 || !slices.Equal(got[0].rcpts, []string{"bo@contoso.test", "cy@contoso.test"}) ||
				!bytes.Equal(got[0].data, body) {
				t.Fatalf("sink got %d mails over %d connections: %+v", len(got), mx.connections(), got)
			}
			b := e.bounces.all()
			if len(b) != 1 {
				t.Fatalf("%d DSNs, want 1", len(b))
			}
			d := parseDSN(t, b[0].msg)
			mustContain(t, "status part", d.status, "Final-Recipient: rfc822; nobody@contoso.test\r\n",
				"Status: 5.1.1\r\n", "Diagnostic-Code: smtp; 550 5.1.1 No such user here\r\n")
			if strings.Contains(d.status, "bo@contoso.test") || strings.Contains(d.status, "cy@contoso.test") {
				t.Error("the DSN names a recipient that was delivered")
			}

			if offered := wire.at(true, "PIPELINING") >= 0; offered != tt.pipelining {
				t.Fatalf("the sink offered PIPELINING: %v", offered)
			}
			if wire.at(false, fmt.Sprintf("MAIL FROM:<anna@postkasse.test> BODY=8BITMIME SIZE=%d\r\n", len(body))) < 0 {
				t.Error("MAIL without the SIZE and BODY parameters the sink offers")
			}
			checkEnvelopeOrder(t, wire, rcpts, tt.pipelining)
		})
	}
}

// checkEnvelopeOrder checks when the client sent each RCPT: all before the
// reply to MAIL when pipelining, which a client that waits for each reply
// cannot do; otherwise each after the reply to the command before it.
func checkEnvelopeOrder(t *testing.T, wire *wireLog, rcpts []string, pipelining bool) {
	t.Helper()
	mailReply := wire.at(true, "accepting mail from")
	if mailReply < 0 {
		t.Fatal("no reply to MAIL in the log")
	}
	if pipelining {
		for _, r := range rcpts {
			if at := wire.at(false, "RCPT TO:<"+r+">"); at < 0 || at > mailReply {
				t.Errorf("RCPT for %s at event %d, after the reply to MAIL (%d)", r, at, mailReply)
			}
		}
		return
	}
	prev := mailReply
	for _, r := range rcpts {
		if at := wire.at(false, "RCPT TO:<"+r+">"); at < prev {
			t.Errorf("RCPT for %s at event %d, before the previous reply (%d)", r, at, prev)
		}
		// The reply that names the recipient, or the refusal.
		if prev = wire.at(true, "<"+r+">"); prev < 0 {
			prev = wire.at(true, "No such user here")
		}
	}
	if data := wire.at(false, "DATA\r\n"); data < prev {
		t.Errorf("DATA at event %d, before the reply to the last RCPT (%d)", data, prev)
	}
}

// TestPipelinedRefusals checks the replies that end a pipelined envelope
// early: a refused MAIL speaks for every recipient (not the refusals of the
// RCPTs sent with it), and when no RCPT is accepted there is no DATA.
func TestPipelinedRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prefix    string
		cfg       sinkConfig
		wantReply string // every recipient's
		wantGone  bool   // failed, and the sender told
	}{
		{"MAIL refused", "127.3.52", sinkConfig{mail: func(string) error {
			return reject(451, gosmtp.EnhancedCode{4, 7, 1}, "Greylisted")
		}}, "451 4.7.1 Greylisted", false},
		{"every RCPT refused", "127.3.53", sinkConfig{rcpt: func(string) error {
			return reject(550, gosmtp.EnhancedCode{5, 1, 1}, "No such user")
		}}, "550 5.1.1 No such user", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wire := &wireLog{}
			nw := newTestNet(t, tt.prefix)
			cfg := tt.cfg
			cfg.wrap = func(c net.Conn) net.Conn { return recordConn(c, wire, "") }
			mx := nw.sink(1, cfg)
			z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
			e := newEnv(t, nw.port, z, nil)
			id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "bo, cy", "refused"),
				"bo@contoso.test", "cy@contoso.test")
			e.flush()
			defer func() {
				if t.Failed() {
					t.Logf("conversation:\n%s", wire)
				}
			}()

			if len(mx.accepted()) != 0 || wire.at(false, "DATA\r\n") >= 0 {
				t.Error("DATA sent with no recipient accepted")
			}
			b := e.bounces.all()
			if !tt.wantGone {
				// The refusals that follow are what the client must ignore.
				if at := wire.at(false, "RCPT TO:<cy@contoso.test>"); at < 0 || at > wire.at(true, "Greylisted") {
					t.Error("the RCPTs were not pipelined with MAIL")
				}
				m, ok := e.store.get(id)
				if !ok || len(b) != 0 {
					t.Fatalf("queued %v, %d DSNs; want deferred", ok, len(b))
				}
				for _, rc := range m.Recipients {
					if rc.State != store.RecipientPending || rc.Reply != tt.wantReply {
						t.Errorf("%s: %v %q, want pending with %q", rc.Address, rc.State, rc.Reply, tt.wantReply)
					}
				}
				return
			}
			if _, gone := e.state(id); !gone || len(b) != 1 {
				t.Fatalf("gone %v, %d DSNs; want failed and one DSN", gone, len(b))
			}
			d := parseDSN(t, b[0].msg)
			mustContain(t, "status part", d.status, "Final-Recipient: rfc822; bo@contoso.test\r\n",
				"Final-Recipient: rfc822; cy@contoso.test\r\n", "Diagnostic-Code: smtp; "+tt.wantReply+"\r\n")
			if wire.at(false, "RSET\r\n") < 0 {
				t.Error("no RSET after every recipient was refused")
			}
		})
	}
}

func TestGroupEnd(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxGroup-2) // with its CRLF, a group of its own
	cmds := []string{"MAIL", "RCPT 1", long, "RCPT 3", "RCPT 4", long + "x"}
	var groups [][]string
	for start, end := 0, 0; start < len(cmds); start = end {
		end = groupEnd(cmds, start, true)
		groups = append(groups, cmds[start:end])
	}
	want := [][]string{{"MAIL", "RCPT 1"}, {long}, {"RCPT 3", "RCPT 4"}, {long + "x"}}
	if !slices.EqualFunc(groups, want, slices.Equal) {
		t.Errorf("groups of sizes %v", sizes(groups))
	}
	for i := range cmds {
		if end := groupEnd(cmds, i, false); end != i+1 {
			t.Errorf("without pipelining, the group at %d ends at %d", i, end)
		}
	}
}

func sizes(groups [][]string) []int {
	var n []int
	for _, g := range groups {
		n = append(n, len(g))
	}
	return n
}

// TestPipeliningManyRecipients sends an envelope too large for one group:
// the groups go out one after the other, and the replies stay in step.
func TestPipeliningManyRecipients(t *testing.T) {
	t.Parallel()
	wire := &wireLog{}
	nw := newTestNet(t, "127.3.58")
	mx := nw.sink(1, sinkConfig{
		rcpt: func(to string) error {
			if strings.HasPrefix(to, "recipient-150-") {
				return reject(550, gosmtp.EnhancedCode{5, 1, 1}, "No such user")
			}
			return nil
		},
		wrap: func(c net.Conn) net.Conn { return recordConn(c, wire, "") },
	})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, nil)
	var rcpts []string
	for i := range 200 {
		rcpts = append(rcpts, fmt.Sprintf("recipient-%03d-with-a-longish-name@contoso.test", i))
	}
	id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "many", "crowd"), rcpts...)
	e.flush()

	st, _ := e.state(id)
	if st != nil || len(e.bounces.all()) != 1 {
		t.Fatalf("states %v, %d DSNs; want one failure reported and the rest delivered", st, len(e.bounces.all()))
	}
	want := slices.Delete(slices.Clone(rcpts), 150, 151)
	if got := mx.accepted(); len(got) != 1 || !slices.Equal(got[0].rcpts, want) {
		t.Fatalf("sink got %d mails", len(got))
	}
	mailReply := wire.at(true, "accepting mail from")
	first, last := wire.at(false, "RCPT TO:<"+rcpts[0]+">"), wire.at(false, "RCPT TO:<"+rcpts[199]+">")
	if first < 0 || first > mailReply || last < mailReply {
		t.Errorf("first RCPT at %d, last at %d, reply to MAIL at %d: want one group before the reply and more after", first, last, mailReply)
	}
}
