package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/dkim"
	"postkasse.dev/postkasse/internal/testcert"
	"postkasse.dev/postkasse/store"
)

func TestDeliverByMX(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.1")
	mx2 := nw.sink(2, sinkConfig{})
	fabrikam := nw.sink(3, sinkConfig{})
	northwind := nw.sink(4, sinkConfig{})
	nw.deadHost(1)
	z := newZone(t,
		"contoso.test. MX 10 mx1.contoso.test.",
		"contoso.test. MX 20 mx2.contoso.test.",
		"mx1.contoso.test. A 127.3.1.1",
		"mx2.contoso.test. A 127.3.1.2",
		"fabrikam.example. MX 5 mx.fabrikam.example.",
		"mx.fabrikam.example. A 127.3.1.3",
		"northwind.test. A 127.3.1.4", // no MX: the address record is used
	)
	e := newEnv(t, nw.port, z, nil)
	body := testMessage("anna@postkasse.test", "several", "quarterly numbers")
	id := e.enqueue("anna@postkasse.test", body,
		"bo@contoso.test", "dee@fabrikam.example", "Cy@Contoso.TEST", "eve@northwind.test")
	e.flush()

	if _, gone := e.state(id); !gone {
		t.Fatal("message still queued after every recipient was delivered")
	}
	tests := []struct {
		name  string
		sink  *sink
		rcpts []string
	}{
		{"second MX, both contoso recipients in one transaction", mx2, []string{"bo@contoso.test", "Cy@Contoso.TEST"}},
		{"fabrikam MX", fabrikam, []string{"dee@fabrikam.example"}},
		{"implicit MX", northwind, []string{"eve@northwind.test"}},
	}
	for _, tt := range tests {
		got := tt.sink.accepted()
		if len(got) != 1 || tt.sink.connections() != 1 {
			t.Errorf("%s: %d mails over %d connections, want 1 over 1", tt.name, len(got), tt.sink.connections())
			continue
		}
		m := got[0]
		if !slices.Equal(m.rcpts, tt.rcpts) || m.from != "anna@postkasse.test" || m.helo != "mail.contoso.test" {
			t.Errorf("%s: got rcpts %v from %q helo %q", tt.name, m.rcpts, m.from, m.helo)
		}
		if !bytes.Equal(m.data, body) {
			t.Errorf("%s: body changed in transit:\n%q\nwant\n%q", tt.name, m.data, body)
		}
	}
	if b := e.bounces.all(); len(b) != 0 {
		t.Errorf("%d DSNs for a clean delivery", len(b))
	}
	mustContain(t, "log", e.logs.String(), "msg=\"delivery attempt\"", "domain=contoso.test", "host=mx2.contoso.test", "tls=false", "result=delivered")
}

func TestSTARTTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prefix    string
		serverTLS func(*tls.Config) *tls.Config // nil: no STARTTLS offered
		clientTLS *tls.Config
		wantTLS   bool
		wantConns int
	}{
		{"used when offered", "127.3.2", func(c *tls.Config) *tls.Config { return c }, nil, true, 1},
		{"not offered", "127.3.3", nil, nil, false, 1},
		{"failed handshake falls back to plaintext", "127.3.4",
			func(c *tls.Config) *tls.Config { c.MinVersion = tls.VersionTLS13; return c },
			&tls.Config{MaxVersion: tls.VersionTLS12}, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nw := newTestNet(t, tt.prefix)
			var cfg sinkConfig
			if tt.serverTLS != nil {
				// Self-signed and not for this name: MX delivery does not verify.
				c := testcert.New(t, "somewhere.else.example").Server
				cfg.tls = tt.serverTLS(c)
			}
			mx := nw.sink(1, cfg)
			z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
			e := newEnv(t, nw.port, z, func(o *Options) { o.TLSConfig = tt.clientTLS })
			id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "bo", "tls"), "bo@contoso.test")
			e.flush()
			if _, gone := e.state(id); !gone {
				t.Fatal("not delivered")
			}
			got := mx.accepted()
			if len(got) != 1 || got[0].tls != tt.wantTLS || mx.connections() != tt.wantConns {
				t.Fatalf("mails %d, tls %v, connections %d; want tls %v over %d connections",
					len(got), len(got) > 0 && got[0].tls, mx.connections(), tt.wantTLS, tt.wantConns)
			}
			if got[0].helo != "mail.contoso.test" {
				t.Errorf("EHLO %q after TLS", got[0].helo)
			}
			mustContain(t, "log", e.logs.String(), fmt.Sprintf("tls=%v", tt.wantTLS))
		})
	}
}

func TestRetryUntilDelivered(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.5")
	mx := nw.sink(1, sinkConfig{data: func(n int) error {
		if n <= 2 {
			return reject(451, gosmtp.EnhancedCode{4, 3, 0}, "Try again later")
		}
		return nil
	}})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, func(o *Options) { o.RetryAfter = 10 * time.Minute })
	e.run()
	id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "bo", "retry"), "bo@contoso.test")

	wantWait := []time.Duration{10 * time.Minute, 20 * time.Minute}
	for attempt, wait := range wantWait {
		e.runner.Kick()
		eventually(t, fmt.Sprintf("attempt %d", attempt+1), func() bool {
			m, ok := e.store.get(id)
			return ok && m.Attempts == attempt+1 && !e.runner.isBusy(id)
		})
		m, _ := e.store.get(id)
		now := e.clock.Now()
		lo, hi := now.Add(wait*9/10), now.Add(wait*11/10)
		if m.NextAttempt.Before(lo) || m.NextAttempt.After(hi) {
			t.Fatalf("attempt %d: next attempt in %v, want %v ±10%%", attempt+1, m.NextAttempt.Sub(now), wait)
		}
		if m.Recipients[0].State != store.RecipientPending || !strings.HasPrefix(m.Recipients[0].Reply, "451 4.3.0") ||
			!strings.Contains(m.LastError, "Try again later") {
			t.Fatalf("attempt %d: recipient %+v, last error %q", attempt+1, m.Recipients[0], m.LastError)
		}
		// Not due yet: a kick changes nothing.
		e.runner.Kick()
		time.Sleep(50 * time.Millisecond)
		if m2, _ := e.store.get(id); m2.Attempts != attempt+1 {
			t.Fatalf("attempted again before the retry time")
		}
		e.clock.Advance(wait * 12 / 10)
	}
	e.runner.Kick()
	eventually(t, "delivery", func() bool { _, gone := e.state(id); return gone })
	if got := mx.accepted(); len(got) != 1 || mx.connections() != 3 {
		t.Fatalf("%d mails over %d connections, want 1 over 3", len(got), mx.connections())
	}
	if b := e.bounces.all(); len(b) != 0 {
		t.Fatalf("%d DSNs for a message that got through", len(b))
	}
}

func TestPermanentFailureOfOneRecipient(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.6")
	mx := nw.sink(1, sinkConfig{rcpt: func(to string) error {
		if to == "nobody@contoso.test" {
			return reject(550, gosmtp.EnhancedCode{5, 1, 1}, "No such user here")
		}
		return nil
	}})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, nil)
	body := testMessage("anna@postkasse.test", "bo, nobody", "the plan")
	id := e.enqueue("anna@postkasse.test", body, "bo@contoso.test", "nobody@contoso.test")
	e.flush()

	if _, gone := e.state(id); !gone {
		t.Fatal("message still queued")
	}
	if got := mx.accepted(); len(got) != 1 || !slices.Equal(got[0].rcpts, []string{"bo@contoso.test"}) {
		t.Fatalf("sink got %+v", got)
	}
	b := e.bounces.all()
	if len(b) != 1 {
		t.Fatalf("%d DSNs, want 1", len(b))
	}
	if b[0].from != "" || !slices.Equal(b[0].to, []string{"anna@postkasse.test"}) || b[0].kind != "dsn" {
		t.Fatalf("DSN envelope from %q to %v kind %q", b[0].from, b[0].to, b[0].kind)
	}
	d := parseDSN(t, b[0].msg)
	if d.params["report-type"] != "delivery-status" {
		t.Errorf("report-type %q", d.params["report-type"])
	}
	mustContain(t, "From", d.header.Get("From"), "Mail Delivery System", "<MAILER-DAEMON@mail.contoso.test>")
	if got := d.header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted %q", got)
	}
	mustContain(t, "In-Reply-To", d.header.Get("In-Reply-To"), "<the.plan@contoso.test>")
	mustContain(t, "text part", d.text, "nobody@contoso.test", "550 5.1.1 No such user here")
	if strings.Contains(d.text, "bo@contoso.test") {
		t.Error("text part names the recipient that was delivered")
	}
	mustContain(t, "status part", d.status,
		"Reporting-MTA: dns; mail.contoso.test\r\n",
		"Arrival-Date: ",
		"Final-Recipient: rfc822; nobody@contoso.test\r\n",
		"Action: failed\r\n",
		"Status: 5.1.1\r\n",
		"Diagnostic-Code: smtp; 550 5.1.1 No such user here\r\n")
	mustContain(t, "returned header", d.headers, "Subject: the plan\r\n", "From: anna@postkasse.test\r\n")
	if strings.Contains(d.headers, "this is the plan") {
		t.Error("the returned header includes the body")
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prefix   string
		from     string
		kind     string
		age      time.Duration
		wantDSN  bool
		wantGone bool
	}{
		{"ordinary sender is told", "127.3.10", "anna@postkasse.test", "", 121 * time.Hour, true, true},
		{"null sender is not", "127.3.11", "", "", 121 * time.Hour, false, true},
		{"DSNs are not bounced", "127.3.12", "anna@postkasse.test", "dsn", 121 * time.Hour, false, true},
		{"auto-replies are not bounced", "127.3.13", "anna@postkasse.test", "auto-reply", 121 * time.Hour, false, true},
		{"not expired yet", "127.3.14", "anna@postkasse.test", "", 119 * time.Hour, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nw := newTestNet(t, tt.prefix)
			mx := nw.sink(1, sinkConfig{data: func(int) error {
				return reject(451, gosmtp.EnhancedCode{4, 3, 0}, "Try again later")
			}})
			z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
			e := newEnv(t, nw.port, z, func(o *Options) { o.DelayWarning = -1 })
			now := e.clock.Now()
			id := e.store.put(store.QueuedMessage{
				From: tt.from, Kind: tt.kind, Created: now.Add(-tt.age), NextAttempt: now, Attempts: 30,
				Recipients: []store.QueuedRecipient{{Address: "bo@contoso.test", Reply: "451 4.3.0 Try again later"}},
			}, testMessage("anna@postkasse.test", "bo", "old news"))
			e.flush()

			if _, gone := e.state(id); gone != tt.wantGone {
				t.Fatalf("gone = %v, want %v", gone, tt.wantGone)
			}
			if tt.wantGone && mx.connections() != 0 {
				t.Error("an expired message was still tried")
			}
			b := e.bounces.all()
			if (len(b) == 1) != tt.wantDSN || len(b) > 1 {
				t.Fatalf("%d DSNs, want DSN %v", len(b), tt.wantDSN)
			}
			if !tt.wantDSN {
				return
			}
			d := parseDSN(t, b[0].msg)
			mustContain(t, "status part", d.status, "Action: failed\r\n", "Status: 4.4.7\r\n",
				"Diagnostic-Code: smtp; 451 4.3.0 Try again later\r\n")
			mustContain(t, "text part", d.text, "bo@contoso.test", "given up after 120h")
		})
	}
}

func TestDelayWarningOnce(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.15")
	nw.sink(1, sinkConfig{data: func(int) error {
		return reject(452, gosmtp.EnhancedCode{4, 2, 2}, "Mailbox full")
	}})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, nil) // DelayWarning defaults to 4h
	now := e.clock.Now()
	young := e.store.put(store.QueuedMessage{From: "anna@postkasse.test", Created: now.Add(-time.Hour), NextAttempt: now,
		Recipients: []store.QueuedRecipient{{Address: "cy@contoso.test"}}}, testMessage("anna@postkasse.test", "cy", "young"))
	old := e.store.put(store.QueuedMessage{From: "anna@postkasse.test", Created: now.Add(-5 * time.Hour), NextAttempt: now,
		Recipients: []store.QueuedRecipient{{Address: "bo@contoso.test"}}}, testMessage("anna@postkasse.test", "bo", "old"))
	e.flush()
	e.flush()

	b := e.bounces.all()
	if len(b) != 1 {
		t.Fatalf("%d DSNs, want one delay warning", len(b))
	}
	d := parseDSN(t, b[0].msg)
	mustContain(t, "status part", d.status, "Final-Recipient: rfc822; bo@contoso.test\r\n", "Action: delayed\r\n",
		"Status: 4.2.2\r\n", "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n", "Will-Retry-Until: ")
	mustContain(t, "subject", d.header.Get("Subject"), "Delayed")
	for id, warned := range map[uint64]bool{old: true, young: false} {
		m, ok := e.store.get(id)
		if !ok || m.DelayWarned != warned || m.Attempts != 2 {
			t.Errorf("message %d: queued %v, warned %v, attempts %d; want warned %v", id, ok, m.DelayWarned, m.Attempts, warned)
		}
	}
}

func TestDSNSubmitFailureKeepsRecipientQueued(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.16")
	nw.sink(1, sinkConfig{rcpt: func(string) error { return reject(550, gosmtp.EnhancedCode{5, 1, 1}, "No such user") }})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, nil)
	e.bounces.setFail(true)
	id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "x", "lost"), "x@contoso.test")
	e.flush()
	st, gone := e.state(id)
	if gone || st["x@contoso.test"] != store.RecipientPending {
		t.Fatalf("with the DSN unsent, the recipient is %v (gone %v), want still pending", st, gone)
	}
	e.bounces.setFail(false)
	e.flush()
	if _, gone := e.state(id); !gone || len(e.bounces.all()) != 1 {
		t.Fatalf("after the submitter recovered: gone %v, %d DSNs", gone, len(e.bounces.all()))
	}
}

func TestDestinationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prefix    string
		domain    string
		wantState store.RecipientState
		wantReply string
		wantDSN   string // Status in the DSN, "" for none
	}{
		{"null MX", "127.3.20", "nullmx.test", store.RecipientFailed, "null MX", "Status: 5.1.10"},
		{"no such domain", "127.3.21", "nosuch.test", store.RecipientFailed, "no MX and no address", "Status: 5.1.2"},
		{"DNS server failure", "127.3.22", "broken.test", store.RecipientPending, "MX lookup", ""},
		{"MX host without address", "127.3.23", "ghostmx.test", store.RecipientPending, "no usable address", ""},
		{"every MX refuses connections", "127.3.24", "deadmx.test", store.RecipientPending, "refused", ""},
		{"address literal", "127.3.25", "[127.3.25.1]", store.RecipientDelivered, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nw := newTestNet(t, tt.prefix)
			nw.sink(1, sinkConfig{})
			dead := nw.deadHost(2)
			z := newZone(t,
				"nullmx.test. MX 0 .",
				"SERVFAIL broken.test.",
				"ghostmx.test. MX 10 ghost.test.",
				"deadmx.test. MX 10 dead.test.",
				"dead.test. A "+dead,
			)
			e := newEnv(t, nw.port, z, nil)
			rcpt := "bo@" + tt.domain
			id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", rcpt, "dest"), rcpt)
			e.flush()
			m, queued := e.store.get(id)
			switch {
			case tt.wantState == store.RecipientPending && !queued:
				t.Fatal("message left the queue")
			case tt.wantState != store.RecipientPending && queued:
				t.Fatalf("message still queued: %+v", m)
			case queued && !strings.Contains(m.Recipients[0].Reply, tt.wantReply):
				t.Fatalf("reply %q, want it to mention %q", m.Recipients[0].Reply, tt.wantReply)
			}
			b := e.bounces.all()
			if (tt.wantDSN != "") != (len(b) == 1) || len(b) > 1 {
				t.Fatalf("%d DSNs, want %q", len(b), tt.wantDSN)
			}
			if tt.wantDSN != "" {
				d := parseDSN(t, b[0].msg)
				mustContain(t, "status part", d.status, tt.wantDSN+"\r\n", "Diagnostic-Code: X-Postkasse; ")
				mustContain(t, "text part", d.text, tt.wantReply)
			}
		})
	}
}

func TestSmarthost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prefix    string
		password  string
		trusted   bool
		serverTLS bool
		wantAuth  bool
		implicit  bool // TLS from the first byte instead of STARTTLS
	}{
		{"AUTH PLAIN over verified STARTTLS", "127.3.30", "s3cret", true, true, true, false},
		{"wrong password defers", "127.3.31", "guess", true, true, false, false},
		{"untrusted certificate defers", "127.3.32", "s3cret", false, true, false, false},
		{"no STARTTLS defers", "127.3.33", "s3cret", true, false, false, false},
		{"AUTH PLAIN over implicit TLS", "127.3.34", "s3cret", true, true, true, true},
		{"implicit TLS, untrusted certificate defers", "127.3.35", "s3cret", false, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nw := newTestNet(t, tt.prefix)
			relayCert := testcert.New(t, "relay.test")
			serverTLS, pool := relayCert.Server, relayCert.Pool
			cfg := sinkConfig{login: map[string]string{"relayuser": "s3cret"}}
			switch {
			case tt.implicit:
				cfg.wrap = func(c net.Conn) net.Conn { return tls.Server(c, serverTLS) }
			case tt.serverTLS:
				cfg.tls = serverTLS
			}
			relay := nw.sink(1, cfg)
			// MX records that must not be used: everything goes to the relay.
			z := newZone(t, "relay.test. A "+nw.ip(1), "contoso.test. MX 10 elsewhere.test.")
			e := newEnv(t, nw.port, z, func(o *Options) {
				o.Smarthost = fmt.Sprintf("relay.test:%d", nw.port)
				o.SmarthostUsername, o.SmarthostPassword = "relayuser", tt.password
				if tt.trusted {
					o.TLSConfig = &tls.Config{RootCAs: pool}
				}
				if tt.implicit {
					o.SmarthostTLS = SmarthostTLS
				}
			})
			id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "two domains", "relay"),
				"bo@contoso.test", "dee@fabrikam.example")
			e.flush()
			got := relay.accepted()
			if !tt.wantAuth {
				st, gone := e.state(id)
				if gone || len(got) != 0 || st["bo@contoso.test"] != store.RecipientPending || len(e.bounces.all()) != 0 {
					t.Fatalf("gone %v, %d mails, states %v, %d DSNs; want all deferred", gone, len(got), st, len(e.bounces.all()))
				}
				return
			}
			if len(got) != 1 || relay.connections() != 1 {
				t.Fatalf("%d mails over %d connections", len(got), relay.connections())
			}
			if m := got[0]; !m.tls || m.authUser != "relayuser" || !slices.Equal(m.rcpts, []string{"bo@contoso.test", "dee@fabrikam.example"}) {
				t.Fatalf("relay got %+v", m)
			}
			if _, gone := e.state(id); !gone {
				t.Fatal("message still queued")
			}
		})
	}
}

func TestDKIMSignedAtSendTime(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.40")
	mx := nw.sink(1, sinkConfig{})
	z := newZone(t, "fabrikam.example. MX 10 mx.fabrikam.example.", "mx.fabrikam.example. A "+nw.ip(1))
	_, key, err := dkim.GenerateKey(1024)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]dkim.Key{"contoso.test": {Selector: "pk1", Signer: key}}
	e := newEnv(t, nw.port, z, func(o *Options) { o.Signer = dkim.NewSigner(keys) })
	body := testMessage("Anna <anna@contoso.test>", "dee@fabrikam.example", "signed")
	id := e.enqueue("anna@contoso.test", body, "dee@fabrikam.example")
	e.flush()
	if _, gone := e.state(id); !gone {
		t.Fatal("not delivered")
	}
	got := mx.accepted()
	if len(got) != 1 || !bytes.HasSuffix(got[0].data, body) {
		t.Fatalf("sink got %d mails; want the body with a signature in front", len(got))
	}
	name, value, err := dkim.TXTRecord("pk1", "contoso.test", key.Public())
	if err != nil {
		t.Fatal(err)
	}
	verifs, err := msgauth.VerifyWithOptions(bytes.NewReader(got[0].data), &msgauth.VerifyOptions{
		LookupTXT: func(n string) ([]string, error) {
			if n == name {
				return []string{value}, nil
			}
			return nil, errors.New("no record")
		},
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "contoso.test" {
		t.Fatalf("verify: %v %+v", err, verifs)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.41")
	var now, peak atomic.Int32
	cfg := sinkConfig{data: func(int) error {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		now.Add(-1)
		return nil
	}}
	var records, rcpts []string
	for i := 1; i <= 6; i++ {
		nw.sink(i, cfg)
		d := fmt.Sprintf("d%d.test", i)
		records = append(records, d+". A "+nw.ip(i))
		rcpts = append(rcpts, "x@"+d)
	}
	z := newZone(t, records...)
	e := newEnv(t, nw.port, z, func(o *Options) { o.Concurrency = 2 })
	a := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "many", "fan out"), rcpts...)
	b := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "many", "fan out again"), rcpts...)
	e.flush()
	for _, id := range []uint64{a, b} {
		if _, gone := e.state(id); !gone {
			t.Fatalf("message %d not delivered", id)
		}
	}
	if p := peak.Load(); p > 2 || p < 2 {
		t.Fatalf("peak of %d deliveries at once, want 2", p)
	}
}

func TestRunFinishesAttemptsInFlight(t *testing.T) {
	t.Parallel()
	nw := newTestNet(t, "127.3.42")
	mx := nw.sink(1, sinkConfig{dataWait: 300 * time.Millisecond})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.runner.Run(ctx) }()
	id := e.enqueue("anna@postkasse.test", testMessage("anna@postkasse.test", "bo", "in flight"), "bo@contoso.test")
	e.runner.Kick()
	eventually(t, "DATA at the sink", func() bool {
		mx.mu.Lock()
		defer mx.mu.Unlock()
		return mx.datas == 1
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if _, gone := e.state(id); !gone || len(mx.accepted()) != 1 {
		t.Fatal("the attempt in flight was not finished and saved before Run returned")
	}
}

// TestWithRealStore runs one round against the bbolt store instead of the
// fake, to keep the two in agreement.
func TestWithRealStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Path: t.TempDir() + "/mail.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	nw := newTestNet(t, "127.3.43")
	mx := nw.sink(1, sinkConfig{rcpt: func(to string) error {
		if strings.HasPrefix(to, "later@") {
			return reject(450, gosmtp.EnhancedCode{4, 2, 1}, "Busy")
		}
		return nil
	}})
	z := newZone(t, "contoso.test. MX 10 mx.contoso.test.", "mx.contoso.test. A "+nw.ip(1))
	e := newEnv(t, nw.port, z, func(o *Options) { o.Storage = st; o.Now = time.Now })
	ids, err := st.Enqueue(ctx,
		store.NewQueuedMessage{From: "a@postkasse.test", Recipients: []string{"bo@contoso.test"}, Body: testMessage("a@postkasse.test", "bo", "one")},
		store.NewQueuedMessage{From: "a@postkasse.test", Recipients: []string{"bo@contoso.test", "later@contoso.test"}, Body: testMessage("a@postkasse.test", "bo", "two")})
	if err != nil {
		t.Fatal(err)
	}
	e.flush()
	left, err := st.QueueList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != ids[1] || left[0].Attempts != 1 ||
		left[0].Recipients[0].State != store.RecipientDelivered || left[0].Recipients[1].State != store.RecipientPending {
		t.Fatalf("queue after one round: %+v", left)
	}
	if len(mx.accepted()) != 2 {
		t.Fatalf("%d mails at the sink, want 2", len(mx.accepted()))
	}
}
