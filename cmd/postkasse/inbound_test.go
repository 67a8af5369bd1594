package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/internal/testdns"
	"postkasse.dev/postkasse/mailauth"
	"postkasse.dev/postkasse/resolver"
)

// The checks of mail from other servers (SPEC §11), end to end: the test
// trusts only 127.0.0.1 and sends from 127.0.0.2, an outside server, whose
// address the senders' SPF records name or not. Every DNS answer comes
// from a testdns server on loopback.

const outsideIP = "127.0.0.2"

// inboundConfig is added to baseConfig: DNS and SINK are replaced.
const inboundConfig = `
[inbound]
trusted_networks = ["127.0.0.1/32"]

[dns]
resolver = "DNS"

[outbound]
smarthost = "SINK"
smarthost_tls = "none"
retry_after = "200ms"

[shared.info]
address = "info@contoso.test"
members = ["anna@contoso.test"]

[group.sales]
address = "sales@contoso.test"
members = ["bo@contoso.test", "carl@contoso.test"]
allow_external_senders = true

[user.dora]
address  = "dora@contoso.test"
password = "` + annaHash + `"

[user.dora.forward]
to = ["dora@home.example"]
keep_copy = true
`

// infoJunk is the shared mailbox's Junk folder as its member sees it.
const infoJunk = "Shared/info@contoso.test/Junk"

// inboundWorld is a running server, the DNS it asks, the sink that
// forwarded mail goes to, and the DKIM keys of the outside domains.
type inboundWorld struct {
	ts   *testServer
	text string // the configuration file
	dns  *testdns.Server
	sink *sink
	keys map[string]ed25519.PrivateKey // by domain, selector "sel"
}

func startInbound(t *testing.T) *inboundWorld {
	t.Helper()
	w := &inboundWorld{keys: map[string]ed25519.PrivateKey{}}
	w.dns = testdns.New(t,
		// Outside senders; 127.0.0.2 is their server where SPF says so.
		`pass.example. TXT "v=spf1 ip4:127.0.0.2 -all"`,
		`fail.example. TXT "v=spf1 -all"`,
		`soft.example. TXT "v=spf1 ~all"`,
		`nospf.example. A 192.0.2.99`,
		`fabrikam.example. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.fabrikam.example. TXT "v=DMARC1; p=reject"`,
		`northwind.example. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.northwind.example. TXT "v=DMARC1; p=none"`,
		`quarantine.example. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.quarantine.example. TXT "v=DMARC1; p=quarantine"`,
		`attacker.example. TXT "v=spf1 ip4:127.0.0.2 -all"`,
		// Our own domain: its mail servers are elsewhere.
		`contoso.test. TXT "v=spf1 ip4:192.0.2.20 -all"`,
		`_dmarc.contoso.test. TXT "v=DMARC1; p=reject"`,
	)
	for _, d := range []string{"fabrikam.example", "northwind.example", "contoso.test"} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		w.keys[d] = priv
		w.dns.Add(t, `sel._domainkey.`+d+`. TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(pub)+`"`)
	}
	w.sink = newSink(t, "127.0.0.1")
	w.text = baseConfig + strings.NewReplacer("DNS", w.dns.Addr, "SINK", w.sink.addr).Replace(inboundConfig)
	// A short DNS bound, so a silent server fails a lookup quickly; long
	// enough that a loaded machine still gets its answers.
	w.ts = startServerText(t, w.text, serverOptions{dnsTimeout: 2 * time.Second})
	return w
}

// sign returns msg (CRLF line ends) DKIM-signed by domain.
func (w *inboundWorld) sign(t *testing.T, domain, msg string) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: "sel", Signer: w.keys[domain]})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// crlf writes a test message with CRLF line ends.
func crlf(from, subject, body string) string {
	return strings.ReplaceAll(fmt.Sprintf("From: %s\nTo: someone@contoso.test\nSubject: %s\nMessage-ID: <%s@test>\nDate: Mon, 02 Nov 2026 10:00:00 +0000\n\n%s\n",
		from, subject, strings.ReplaceAll(subject, " ", "-"), body), "\n", "\r\n")
}

// sendFrom sends msg (CRLF line ends, sent as it is) over the MX port from
// the local address ip, and returns the first error the server answered.
func sendFrom(t *testing.T, ip, addr, mailFrom string, to []string, msg string) error {
	t.Helper()
	c := gosmtp.NewClient(dialFrom(t, ip, addr))
	defer c.Close()
	if err := c.Hello("mx.sender.example"); err != nil {
		return err
	}
	if err := c.Mail(mailFrom, nil); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(wc, msg); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// headers fetches the header of every message in folder, by subject.
func (ts *testServer) headers(user, pass, folder string) map[string]textproto.Header {
	ts.t.Helper()
	c := ts.login(user, pass, nil)
	defer c.Logout()
	sel, err := c.Select(folder, nil).Wait()
	if err != nil {
		ts.t.Fatalf("select %s %s: %v", user, folder, err)
	}
	out := map[string]textproto.Header{}
	if sel.NumMessages == 0 {
		return out
	}
	section := &goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, Peek: true}
	var all goimap.SeqSet
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		ts.t.Fatal(err)
	}
	for _, m := range msgs {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.FindBodySection(section))))
		if err != nil {
			ts.t.Fatal(err)
		}
		out[h.Get("Subject")] = h
	}
	return out
}

// ourResults returns the parsed Authentication-Results fields of h whose
// authserv-id is the server's, and the raw values of the others.
func ourResults(t *testing.T, h textproto.Header) (ours [][]authres.Result, others []string) {
	t.Helper()
	for _, v := range h.Values("Authentication-Results") {
		if mailauth.AuthservID(v) != "mail.contoso.test" {
			others = append(others, v)
			continue
		}
		_, results, err := authres.Parse(v)
		if err != nil {
			t.Fatalf("our Authentication-Results %q: %v", v, err)
		}
		ours = append(ours, results)
	}
	return ours, others
}

// resultsText is results as "spf=pass dkim=fail dmarc=none", in order.
func resultsText(results []authres.Result) string {
	var parts []string
	for _, r := range results {
		switch r := r.(type) {
		case *authres.SPFResult:
			parts = append(parts, "spf="+string(r.Value))
		case *authres.DKIMResult:
			parts = append(parts, "dkim="+string(r.Value))
		case *authres.DMARCResult:
			parts = append(parts, "dmarc="+string(r.Value))
		default:
			parts = append(parts, fmt.Sprintf("%T", r))
		}
	}
	return strings.Join(parts, " ")
}

// TestInboundResultsRecorded: SPF pass, fail, softfail and none, DKIM pass
// and fail and DMARC pass and fail are recorded in exactly one
// Authentication-Results header of ours; a forged one in our name is
// gone, one naming another host stays.
func TestInboundResultsRecorded(t *testing.T) {
	t.Parallel()
	w := startInbound(t)
	altered := strings.Replace(w.sign(t, "northwind.example", crlf("x@northwind.example", "dkim fail", "the original text")), "the original text", "an altered text", 1)
	forged := "Authentication-Results: mail.contoso.test; spf=pass smtp.mailfrom=fail.example; dkim=pass header.d=contoso.test\r\n" +
		"Authentication-Results: relay.other.example; spf=pass smtp.mailfrom=fail.example\r\n" +
		crlf("x@fail.example", "forged", "trust me")
	cases := []struct {
		subject, mailFrom, msg, want string
	}{
		{"spf pass", "bob@pass.example", crlf("bob@pass.example", "spf pass", "x"), "spf=pass dkim=none dmarc=none"},
		{"spf fail", "x@fail.example", crlf("x@fail.example", "spf fail", "x"), "spf=fail dkim=none dmarc=none"},
		{"spf softfail", "x@soft.example", crlf("x@soft.example", "spf softfail", "x"), "spf=softfail dkim=none dmarc=none"},
		{"spf none", "x@nospf.example", crlf("x@nospf.example", "spf none", "x"), "spf=none dkim=none dmarc=none"},
		{"dkim pass", "bob@fabrikam.example", w.sign(t, "fabrikam.example", crlf("bob@fabrikam.example", "dkim pass", "signed")), "spf=fail dkim=pass dmarc=pass"},
		{"dkim fail", "x@northwind.example", altered, "spf=fail dkim=fail dmarc=fail"},
		{"forged", "x@fail.example", forged, "spf=fail dkim=none dmarc=none"},
	}
	for _, c := range cases {
		if err := sendFrom(t, outsideIP, w.ts.smtp, c.mailFrom, []string{"anna@contoso.test"}, c.msg); err != nil {
			t.Fatalf("%s: %v", c.subject, err)
		}
	}
	got := w.ts.headers("anna@contoso.test", "anna-secret", "INBOX")
	for _, c := range cases {
		h, ok := got[c.subject]
		if !ok {
			t.Errorf("%s: not in INBOX", c.subject)
			continue
		}
		ours, others := ourResults(t, h)
		if len(ours) != 1 {
			t.Errorf("%s: %d Authentication-Results of ours, want 1: %q", c.subject, len(ours), h.Values("Authentication-Results"))
			continue
		}
		if r := resultsText(ours[0]); r != c.want {
			t.Errorf("%s: %s, want %s", c.subject, r, c.want)
		}
		wantOthers := 0
		if c.subject == "forged" {
			wantOthers = 1
		}
		if len(others) != wantOthers {
			t.Errorf("%s: other hosts' results %q, want %d", c.subject, others, wantOthers)
		}
	}
}

// TestInboundDMARCPolicies: a failing p=reject is refused after DATA with
// nothing stored anywhere; a failing p=quarantine goes to the Junk folder
// of every recipient: a user, a shared mailbox and a group's members.
func TestInboundDMARCPolicies(t *testing.T) {
	t.Parallel()
	w := startInbound(t)
	err := sendFrom(t, outsideIP, w.ts.smtp, "bob@fabrikam.example", []string{"anna@contoso.test", "info@contoso.test"}, crlf("bob@fabrikam.example", "spoofed", "x"))
	if got := smtpCode(err); got != "550 5.7.1" {
		t.Fatalf("DMARC p=reject failing: %s, want 550 5.7.1", got)
	}
	if count, _, _ := blobStats(w.ts.srv.store); count != 0 {
		t.Fatalf("%d bodies stored after a DMARC reject", count)
	}

	to := []string{"anna@contoso.test", "info@contoso.test", "sales@contoso.test"}
	if err := sendFrom(t, outsideIP, w.ts.smtp, "x@quarantine.example", to, crlf("x@quarantine.example", "suspect", "x")); err != nil {
		t.Fatalf("DMARC p=quarantine failing: %v", err)
	}
	for _, c := range []struct{ user, pass, inbox, junk string }{
		{"anna@contoso.test", "anna-secret", "INBOX", "Junk"},
		{"anna@contoso.test", "anna-secret", infoInbox, infoJunk},
		{"bo@contoso.test", "bo-secret", "INBOX", "Junk"},
		{"carl@contoso.test", "carl-secret", "INBOX", "Junk"},
	} {
		if n := w.ts.count(c.user, c.pass, c.junk); n != 1 {
			t.Errorf("%s %s: %d messages, want 1", c.user, c.junk, n)
		}
		if n := w.ts.count(c.user, c.pass, c.inbox); n != 0 {
			t.Errorf("%s %s: %d messages, want 0", c.user, c.inbox, n)
		}
	}
	h := w.ts.headers("bo@contoso.test", "bo-secret", "Junk")["suspect"]
	if ours, _ := ourResults(t, h); len(ours) != 1 || resultsText(ours[0]) != "spf=fail dkim=none dmarc=fail" {
		t.Errorf("quarantined copy's results: %q", h.Values("Authentication-Results"))
	}
}

// TestInboundSwitchesFollowReload: switching DMARC off in [inbound] and
// reloading applies to the next message: no dmarc= result, no quarantine.
func TestInboundSwitchesFollowReload(t *testing.T) {
	t.Parallel()
	w := startInbound(t)
	msg := crlf("x@quarantine.example", "suspect", "x")
	if err := sendFrom(t, outsideIP, w.ts.smtp, "x@quarantine.example", []string{"bo@contoso.test"}, msg); err != nil {
		t.Fatal(err)
	}
	w.ts.writeConfig(strings.Replace(w.text, "[inbound]\n", "[inbound]\ndmarc = false\n", 1))
	if err := w.ts.srv.reload(w.ts.cfgPath); err != nil {
		t.Fatal(err)
	}
	if err := sendFrom(t, outsideIP, w.ts.smtp, "x@quarantine.example", []string{"bo@contoso.test"}, crlf("x@quarantine.example", "after reload", "x")); err != nil {
		t.Fatal(err)
	}
	if n := w.ts.count("bo@contoso.test", "bo-secret", "Junk"); n != 1 {
		t.Errorf("Junk has %d messages, want the one from before the reload", n)
	}
	h, ok := w.ts.headers("bo@contoso.test", "bo-secret", "INBOX")["after reload"]
	if !ok {
		t.Fatal("the message after the reload is not in INBOX")
	}
	if ours, _ := ourResults(t, h); len(ours) != 1 || resultsText(ours[0]) != "spf=fail dkim=none" {
		t.Errorf("results after the reload: %q", h.Values("Authentication-Results"))
	}
}

// TestInboundOwnDomainClaims: nobody outside writes to info@ as anna@:
// not in the envelope without SPF pass, not in From: with an attacker's
// envelope whose SPF passes; with a valid signature by contoso.test it is
// accepted.
func TestInboundOwnDomainClaims(t *testing.T) {
	t.Parallel()
	w := startInbound(t)
	c := gosmtp.NewClient(dialFrom(t, outsideIP, w.ts.smtp))
	defer c.Close()
	if err := c.Hello("mx.attacker.example"); err != nil {
		t.Fatal(err)
	}
	if got := smtpCode(c.Mail("anna@contoso.test", nil)); got != "550 5.7.1" {
		t.Errorf("MAIL FROM an own domain without SPF pass: %s, want 550 5.7.1", got)
	}
	msg := crlf("Anna Andersen <anna@contoso.test>", "urgent invoice", "please pay")
	if got := smtpCode(sendFrom(t, outsideIP, w.ts.smtp, "x@attacker.example", []string{"info@contoso.test"}, msg)); got != "550 5.7.1" {
		t.Errorf("From: an own domain, attacker's envelope: %s, want 550 5.7.1", got)
	}
	if count, _, _ := blobStats(w.ts.srv.store); count != 0 {
		t.Fatalf("%d bodies stored after refused claims of an own domain", count)
	}

	signed := w.sign(t, "contoso.test", crlf("Anna Andersen <anna@contoso.test>", "from anna elsewhere", "signed by us"))
	if err := sendFrom(t, outsideIP, w.ts.smtp, "x@attacker.example", []string{"info@contoso.test"}, signed); err != nil {
		t.Fatalf("From: an own domain with its valid signature: %v", err)
	}
	h, ok := w.ts.headers("anna@contoso.test", "anna-secret", infoInbox)["from anna elsewhere"]
	if !ok {
		t.Fatal("the signed message is not in info's INBOX")
	}
	if ours, _ := ourResults(t, h); len(ours) != 1 || resultsText(ours[0]) != "spf=pass dkim=pass dmarc=pass" {
		t.Errorf("results: %q", h.Values("Authentication-Results"))
	}
	if n := w.ts.count("anna@contoso.test", "anna-secret", infoInbox); n != 1 {
		t.Errorf("info's INBOX has %d messages, want 1", n)
	}
}

// TestInboundDNSFailureDefers: while DNS does not answer, mail is refused
// for now (451 4.7.0) and nothing is stored; retried once DNS is back, it
// is stored once.
func TestInboundDNSFailureDefers(t *testing.T) {
	t.Parallel()
	w := startInbound(t)
	msg := crlf("bob@pass.example", "while dns is down", "x")
	w.dns.SilenceAll(true)
	if got := smtpCode(sendFrom(t, outsideIP, w.ts.smtp, "bob@pass.example", []string{"anna@contoso.test"}, msg)); got != "451 4.7.0" {
		t.Fatalf("DNS silent: %s, want 451 4.7.0", got)
	}
	if got := smtpCode(sendFrom(t, outsideIP, w.ts.smtp, "anna@contoso.test", []string{"bo@contoso.test"}, msg)); got != "451 4.7.0" {
		t.Errorf("DNS silent, own-domain sender: %s, want 451 4.7.0", got)
	}
	if count, _, _ := blobStats(w.ts.srv.store); count != 0 {
		t.Fatalf("%d bodies stored while DNS was silent", count)
	}
	w.dns.SilenceAll(false)
	if err := sendFrom(t, outsideIP, w.ts.smtp, "bob@pass.example", []string{"anna@contoso.test"}, msg); err != nil {
		t.Fatalf("retry after DNS recovered: %v", err)
	}
	if n := w.ts.count("anna@contoso.test", "anna-secret", "INBOX"); n != 1 {
		t.Errorf("anna's INBOX has %d messages, want 1", n)
	}
	h := w.ts.headers("anna@contoso.test", "anna-secret", "INBOX")["while dns is down"]
	if ours, _ := ourResults(t, h); len(ours) != 1 || resultsText(ours[0]) != "spf=pass dkim=none dmarc=none" {
		t.Errorf("results: %q", h.Values("Authentication-Results"))
	}
}

// TestInboundTrustedSkipsChecks: from a trusted network nothing is
// checked or refused and no results of ours are added; forged ones in
// our name are removed there, and on submission, all the same.
func TestInboundTrustedSkipsChecks(t *testing.T) {
	t.Parallel()
	w := startInbound(t)
	forged := "Authentication-Results: mail.contoso.test; dkim=pass header.d=contoso.test\r\n" +
		"Authentication-Results: relay.other.example; spf=pass\r\n"
	// An own domain in both, and a DMARC p=reject From: that would fail.
	if err := sendFrom(t, "127.0.0.1", w.ts.smtp, "anna@contoso.test", []string{"bo@contoso.test"}, forged+crlf("anna@contoso.test", "trusted own", "x")); err != nil {
		t.Fatalf("trusted, own domain: %v", err)
	}
	if err := sendFrom(t, "127.0.0.1", w.ts.smtp, "bob@fabrikam.example", []string{"bo@contoso.test"}, forged+crlf("bob@fabrikam.example", "trusted dmarc", "x")); err != nil {
		t.Fatalf("trusted, failing DMARC p=reject: %v", err)
	}
	if err := w.ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"bo@contoso.test"}, strings.ReplaceAll(forged, "\r\n", "\n")+"From: anna@contoso.test\nSubject: submitted\n\nx\n"); err != nil {
		t.Fatalf("submission: %v", err)
	}
	got := w.ts.headers("bo@contoso.test", "bo-secret", "INBOX")
	for _, subject := range []string{"trusted own", "trusted dmarc", "submitted"} {
		h, ok := got[subject]
		if !ok {
			t.Errorf("%s: not delivered", subject)
			continue
		}
		ours, others := ourResults(t, h)
		if len(ours) != 0 || len(others) != 1 {
			t.Errorf("%s: Authentication-Results %q, want only the other host's", subject, h.Values("Authentication-Results"))
		}
	}
	for _, name := range []string{"_dmarc.fabrikam.example", "fabrikam.example", "contoso.test"} {
		if n := w.dns.Asked(name, "TXT"); n != 0 {
			t.Errorf("DNS asked %d times for TXT %s for trusted mail", n, name)
		}
	}
}

// TestForwardKeepsDKIM: mail signed by an outside domain and forwarded on
// by a user (SRS envelope) reaches the next server with its signature
// still valid: only fields on top were added.
func TestForwardKeepsDKIM(t *testing.T) {
	t.Parallel()
	w := startInbound(t)
	msg := w.sign(t, "fabrikam.example", crlf("Bob <bob@fabrikam.example>", "to be forwarded", "Dear Dora,\n\n.a line with a dot\nregards"))
	if err := sendFrom(t, outsideIP, w.ts.smtp, "bob@fabrikam.example", []string{"dora@contoso.test"}, msg); err != nil {
		t.Fatal(err)
	}
	fwd := w.sink.wait(t, 1)[0]
	if !strings.HasPrefix(fwd.From, "SRS0=") || len(fwd.To) != 1 || fwd.To[0] != "dora@home.example" {
		t.Fatalf("forwarded copy: from %q to %v", fwd.From, fwd.To)
	}
	if !strings.HasSuffix(fwd.Data, msg) {
		t.Errorf("forwarded copy is not the message as received with fields on top:\n%s", fwd.Data)
	}
	dns, err := resolver.New(resolver.Options{Server: w.dns.Addr})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) ([]string, error) { return dns.LookupTXT(context.Background(), name) }
	verifs, err := dkim.VerifyWithOptions(strings.NewReader(fwd.Data), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "fabrikam.example" {
		t.Fatalf("DKIM of the forwarded copy: %+v %v", verifs, err)
	}
	if ours, _ := ourResults(t, forwardedHeader(t, fwd.Data)); len(ours) != 1 {
		t.Errorf("forwarded copy has %d results of ours, want 1", len(ours))
	}
	if n := w.ts.count("dora@contoso.test", "anna-secret", "INBOX"); n != 1 {
		t.Errorf("dora's kept copy: %d messages", n)
	}
}

func forwardedHeader(t *testing.T, data string) textproto.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
