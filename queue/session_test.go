package queue

import (
	"bytes"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// ehloless makes a sink take EHLO for an unknown command, like a server
// from before ESMTP.
type ehloless struct{ net.Conn }

func (c ehloless) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	copy(p, bytes.ReplaceAll(p[:n], []byte("EHLO "), []byte("XHLO ")))
	return n, err
}

func TestHELOFallback(t *testing.T) {
	t.Parallel()
	wire := &wireLog{}
	nw := newTestNet(t, "127.3.54")
	mx := nw.sink(1, sinkConfig{wrap: func(c net.Conn) net.Conn { return recordConn(ehloless{c}, wire, "") }})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, nil)
	id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "bo, cy", "old server"),
		"bo@contoso.test", "cy@contoso.test")
	e.flush()
	if _, gone := e.state(id); !gone {
		t.Fatalf("not delivered; conversation:\n%s", wire)
	}
	got := mx.accepted()
	if len(got) != 1 || got[0].helo != "mail.contoso.test" || !slices.Equal(got[0].rcpts, []string{"bo@contoso.test", "cy@contoso.test"}) {
		t.Fatalf("sink got %+v", got)
	}
	// Without EHLO there are no extensions: no parameters, no pipelining.
	if wire.at(false, "HELO mail.contoso.test\r\n") < 0 || wire.at(false, "MAIL FROM:<anna@postkasse.test>\r\n") < 0 ||
		wire.at(false, "RCPT TO:<bo@contoso.test>") < wire.at(true, "accepting mail from") {
		t.Errorf("conversation:\n%s", wire)
	}
}

func TestSMTPUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prefix  string
		offered bool
	}{
		{"offered", "127.3.55", true},
		{"not offered", "127.3.56", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wire := &wireLog{}
			nw := newTestNet(t, tt.prefix)
			mx := nw.sink(1, sinkConfig{smtputf8: tt.offered, wrap: func(c net.Conn) net.Conn { return recordConn(c, wire, "") }})
			z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
			e := newEnv(t, nw.port, z, nil)
			id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "jörg", "umlaut"), "jörg@contoso.test")
			e.flush()
			if _, gone := e.state(id); !gone {
				t.Fatalf("still queued; conversation:\n%s", wire)
			}
			b := e.bounces.all()
			if tt.offered {
				if got := mx.accepted(); len(got) != 1 || len(b) != 0 || wire.at(false, " SMTPUTF8\r\n") < 0 {
					t.Fatalf("%d mails, %d DSNs; conversation:\n%s", len(got), len(b), wire)
				}
				return
			}
			if len(b) != 1 || wire.at(false, "MAIL FROM") >= 0 {
				t.Fatalf("%d DSNs; conversation:\n%s", len(b), wire)
			}
			d := parseDSN(t, b[0].msg)
			mustContain(t, "status part", d.status, "Status: 5.6.7\r\n", "SMTPUTF8")
		})
	}
}

// TestLineBreakInAddress checks that an address cannot smuggle a command
// into the session: it fails alone, and nothing of it is sent.
func TestLineBreakInAddress(t *testing.T) {
	t.Parallel()
	wire := &wireLog{}
	nw := newTestNet(t, "127.3.57")
	relay := nw.sink(1, sinkConfig{wrap: func(c net.Conn) net.Conn { return recordConn(c, wire, "") }})
	e := newEnv(t, nw.port, nil, func(o *Options) {
		o.Smarthost = fmt.Sprintf("%s:%d", nw.ip(1), nw.port)
		o.SmarthostTLS = SmarthostPlain
	})
	evil := "x@contoso.test>\r\nRCPT TO:<cy@contoso.test"
	id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "bo", "smuggled"), "bo@contoso.test", evil)
	e.flush()
	if _, gone := e.state(id); !gone {
		t.Fatal("still queued")
	}
	if got := relay.accepted(); len(got) != 1 || !slices.Equal(got[0].rcpts, []string{"bo@contoso.test"}) {
		t.Fatalf("relay got %+v", got)
	}
	if b := e.bounces.all(); len(b) != 1 || !strings.Contains(parseDSN(t, b[0].msg).status, "Status: 5.1.3\r\n") {
		t.Fatalf("%d DSNs, want one for the bad address", len(b))
	}
	if wire.at(false, "x@contoso.test") >= 0 || wire.at(false, "cy@contoso.test") >= 0 {
		t.Errorf("the address went out:\n%s", wire)
	}
}

func TestProtoError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg      string
		enhanced gosmtp.EnhancedCode
		text     string
	}{
		{"5.1.1 No such user", gosmtp.EnhancedCode{5, 1, 1}, "No such user"},
		{"5.7.1 Rejected\n5.7.1 see the policy", gosmtp.EnhancedCode{5, 7, 1}, "Rejected\nsee the policy"},
		{"No enhanced status", gosmtp.EnhancedCode{}, "No enhanced status"},
		{"5.1 short", gosmtp.EnhancedCode{}, "5.1 short"},
	}
	for _, tt := range tests {
		err := protoError(fmt.Errorf("wrapped: %w", &textproto.Error{Code: 550, Msg: tt.msg}))
		se, ok := err.(*gosmtp.SMTPError)
		if !ok || se.Code != 550 || se.EnhancedCode != tt.enhanced || se.Message != tt.text {
			t.Errorf("protoError(%q) = %#v", tt.msg, err)
		}
	}
	if err := protoError(net.ErrClosed); err != net.ErrClosed || isReply(err) {
		t.Errorf("a network error became %v", err)
	}
}
