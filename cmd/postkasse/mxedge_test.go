package main

import (
	"encoding/base64"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/internal/syncbuf"
	"postkasse.dev/postkasse/internal/testcert"
	"postkasse.dev/postkasse/srs"
)

// startServerText is startServerWith for a whole configuration text, for
// tests that change baseConfig's top-level keys or [limits].
func startServerText(t *testing.T, text string, opts serverOptions) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.toml"), logs: &syncbuf.Buffer{}, opts: opts}
	ts.writeConfig(text)
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// untrusted makes every client an outsider, so limits apply on loopback.
var untrusted = serverOptions{trusted: func(net.IP) bool { return false }, unknownRecipientDelay: time.Millisecond}

// dial opens an SMTP session and greets.
func dial(t *testing.T, addr string) *gosmtp.Client {
	t.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatal(err)
	}
	return c
}

// sendBytes sends msg as it is (CRLF already in place).
func sendBytes(t *testing.T, addr, from string, to []string, msg string) error {
	t.Helper()
	c := dial(t, addr)
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// TestSRSAddressTakesOnlyGenuineBounces: a genuine SRS return address
// accepts a bounce, which goes back to the original sender; mail with a
// sender is refused at RCPT, and so is every address whose hash differs
// from the genuine one in one character or in the case of one character.
// Nothing but the bounce reaches the smarthost.
func TestSRSAddressTakesOnlyGenuineBounces(t *testing.T) {
	t.Parallel()
	ts, sk := startRoutingServer(t)
	secret, err := os.ReadFile(srsKeyPath(ts.srv.cfg.Load().DataDir))
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := srs.New(secret, "contoso.test").Forward("client@example.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = ts.send("spammer@example.net", []string{genuine}, message("spammer@example.net", genuine, "relay me", "x"))
	if got := smtpCode(err); got != "550 5.7.1" {
		t.Fatalf("non-null sender to an SRS address: %s", got)
	}
	c := dial(t, ts.smtp)
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz"
	tried := 0
	for i := 5; i < 15; i++ { // the hash: SRS0=HHHHHHHHHH=
		for _, ch := range alphabet {
			if byte(ch) == genuine[i] {
				continue
			}
			forged := genuine[:i] + string(ch) + genuine[i+1:]
			if got := smtpCode(c.Rcpt(forged, nil)); got != "550 5.1.1" {
				t.Fatalf("forged %q: %s", forged, got)
			}
			tried++
		}
	}
	if err := c.Rcpt(genuine, nil); err != nil {
		t.Fatalf("bounce to the genuine address after %d forgeries: %v", tried, err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: bounce\r\n\r\nundeliverable\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("bounce: %v", err)
	}
	got := sk.wait(t, 1)
	if len(got) != 1 || got[0].From != "" || len(got[0].To) != 1 || got[0].To[0] != "client@example.org" {
		t.Fatalf("the smarthost received %+v", got)
	}
}

// authPlain is the AUTH PLAIN command for a user.
func authPlain(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "\r\n"
}

// TestBareCRAndNULRefused: a CR not followed by LF, or a NUL, in DATA is
// refused with 550 5.5.2 on the MX port and on submission; nothing is
// stored and nothing relayed. (A CR right after a leading dot, "\r\n.\rX",
// never reaches us: go-smtp's DATA reader drops the dot and the CR.)
func TestBareCRAndNULRefused(t *testing.T) {
	t.Parallel()
	ts, sk := startRoutingServer(t)
	for _, body := range []string{
		"Subject: bare CR\r\n\r\nline one\rline two\r\n.\r\n",
		"Subject: CR at the start\r\n\r\nx\r\n\rMAIL FROM:<evil@example.org>\r\n.\r\n",
		"Subject: NUL\r\n\r\nline\x00one\r\n.\r\n",
	} {
		replies := rawSMTP(t, ts.smtp, "EHLO client.example.org\r\n", "MAIL FROM:<zoe@example.org>\r\n",
			"RCPT TO:<anna@contoso.test>\r\n", "DATA\r\n", body, "QUIT\r\n")
		if got := replies[5]; !strings.HasPrefix(got, "550 5.5.2") {
			t.Errorf("MX, %q: %q (all: %q)", body, got, replies)
		}
		replies = rawSMTP(t, ts.sub, "EHLO client.example.org\r\n", authPlain("anna@contoso.test", "anna-secret"),
			"MAIL FROM:<anna@contoso.test>\r\n", "RCPT TO:<partner@fabrikam.example>\r\n", "DATA\r\n",
			"From: anna@contoso.test\r\n"+body, "QUIT\r\n")
		if got := replies[6]; !strings.HasPrefix(got, "550 5.5.2") {
			t.Errorf("submission, %q: %q (all: %q)", body, got, replies)
		}
	}
	if n := ts.count("anna@contoso.test", "anna-secret", "INBOX"); n != 0 {
		t.Errorf("%d refused messages stored", n)
	}
	// A clean message after them is the first and only one relayed.
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example"},
		message("anna@contoso.test", "partner@fabrikam.example", "clean", "x")); err != nil {
		t.Fatal(err)
	}
	if got := sk.wait(t, 1); len(got) != 1 || !strings.Contains(got[0].Data, "Subject: clean") {
		t.Fatalf("relayed: %+v", got)
	}
}

// TestPostmasterAccepted: postmaster@ both domains and <Postmaster> alone
// reach the mailbox named by the postmaster key.
func TestPostmasterAccepted(t *testing.T) {
	t.Parallel()
	text := strings.Replace(baseConfig, "[limits]", "postmaster = \"bo@contoso.test\"\n\n[limits]", 1)
	ts := startServerText(t, text, serverOptions{})
	for _, rcpt := range []string{"postmaster@contoso.test", "Postmaster@FourthCoffee.test", "Postmaster"} {
		if err := ts.send("mx.example.org@example.org", []string{rcpt}, message("someone@example.org", rcpt, "abuse report "+rcpt, "x")); err != nil {
			t.Errorf("to %s: %v", rcpt, err)
		}
	}
	if n := ts.count("bo@contoso.test", "bo-secret", "INBOX"); n != 3 {
		t.Fatalf("the postmaster received %d messages, want 3", n)
	}
}

// TestSubmissionHeaderRules: exactly one From:, at most one Sender:, and
// the newest Resent-From: held to the send-as rules.
func TestSubmissionHeaderRules(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	submit := func(header string) error {
		return ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"bo@contoso.test"},
			header+"To: bo@contoso.test\nSubject: rules\n\nx\n")
	}
	for _, tt := range []struct {
		name, header, want, text string
	}{
		{"two From", "From: anna@contoso.test\nFrom: bo@contoso.test\n", "550 5.7.1", "2 From: header fields"},
		{"two identical From", "From: anna@contoso.test\nFrom: anna@contoso.test\n", "550 5.7.1", "2 From: header fields"},
		{"no From", "", "550 5.7.1", "0 From: header fields"},
		{"two Sender", "From: anna@contoso.test\nSender: anna@contoso.test\nSender: support@contoso.test\n", "550 5.7.1", "2 Sender: header fields"},
		{"foreign Resent-From", "Resent-From: bo@contoso.test\nFrom: anna@contoso.test\n", "550 5.7.1", "<bo@contoso.test>"},
		{"foreign Resent-Sender", "Resent-From: anna@contoso.test\nResent-Sender: carl@contoso.test\nFrom: anna@contoso.test\n", "550 5.7.1", "<carl@contoso.test>"},
		{"own Resent-From over an older foreign one", "Resent-From: support@contoso.test\nResent-From: bo@contoso.test\nFrom: anna@contoso.test\n", "ok", ""},
		{"one of each", "From: anna@contoso.test\nSender: support@contoso.test\n", "ok", ""},
	} {
		err := submit(tt.header)
		if got := smtpCode(err); got != tt.want || (err != nil && !strings.Contains(err.Error(), tt.text)) {
			t.Errorf("%s: %v, want %s %q", tt.name, err, tt.want, tt.text)
		}
	}
	if n := ts.count("bo@contoso.test", "bo-secret", "INBOX"); n != 2 {
		t.Fatalf("bo has %d messages, want the 2 accepted", n)
	}
}

// TestExternalForwardLoop: dora forwards to an outside address that sends
// the message back to her. The forwarded copy carries her Delivered-To,
// so the copy that comes back is filed once and not forwarded again.
func TestExternalForwardLoop(t *testing.T) {
	t.Parallel()
	ts, sk := startRoutingServer(t)
	if err := ts.send("client@example.org", []string{"dora@contoso.test"}, message("client@example.org", "dora@contoso.test", "loop test", "x")); err != nil {
		t.Fatal(err)
	}
	out := sk.wait(t, 1)[0]
	if !strings.HasPrefix(out.Data, "Delivered-To: dora@contoso.test\r\n") {
		t.Fatalf("forwarded copy without dora's mark:\n%s", out.Data)
	}
	// home.example forwards it back, as it is.
	if err := sendBytes(t, ts.smtp, out.From, []string{"dora@contoso.test"}, out.Data); err != nil {
		t.Fatalf("the copy coming back: %v", err)
	}
	if n := ts.count("dora@contoso.test", "anna-secret", "INBOX"); n != 2 {
		t.Errorf("dora has %d copies, want 2", n)
	}
	// Both deliveries are logged before their 250: the second one relayed
	// nothing.
	var lines []string
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(l, "msg=message ") && strings.Contains(l, "message_id=<loop-test@test>") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "relayed=") || strings.Contains(lines[1], "relayed=") {
		t.Fatalf("delivery log lines:\n%s", strings.Join(lines, "\n"))
	}
}

// TestSmarthostMayByDefault: without smarthost_tls, a smarthost that offers
// no STARTTLS gets the mail in plaintext, and one that offers it gets it
// over TLS.
func TestSmarthostMayByDefault(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t, "127.0.0.1")
	for _, tt := range []struct {
		name    string
		sink    *sink
		wantTLS bool
	}{
		{"plain", newSink(t, "127.0.0.1"), false},
		{"starttls", newTLSSink(t, "127.0.0.1", cert.Server), true},
	} {
		ts := startServer(t, "[outbound]\nsmarthost = \""+tt.sink.addr+"\"\nretry_after = \"200ms\"\n")
		if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example"},
			message("anna@contoso.test", "partner@fabrikam.example", "via smarthost", "x")); err != nil {
			t.Fatal(err)
		}
		if got := tt.sink.wait(t, 1)[0]; got.TLS != tt.wantTLS {
			t.Errorf("%s smarthost: TLS %v, want %v", tt.name, got.TLS, tt.wantTLS)
		}
	}
}

// TestRecipientsPerMessage: past limits.recipients_per_message, every RCPT
// gets 452 4.5.3; the accepted ones are delivered. Trusted clients are not
// limited.
func TestRecipientsPerMessage(t *testing.T) {
	t.Parallel()
	text := strings.Replace(baseConfig, "[limits]", "[limits]\nrecipients_per_message = 2", 1)
	ts := startServerText(t, text, untrusted)
	c := dial(t, ts.smtp)
	if err := c.Mail("client@example.org", nil); err != nil {
		t.Fatal(err)
	}
	for i, rcpt := range []string{"anna@contoso.test", "bo@contoso.test", "carl@contoso.test", "support@contoso.test"} {
		want := "ok"
		if i >= 2 {
			want = "452 4.5.3"
		}
		if got := smtpCode(c.Rcpt(rcpt, nil)); got != want {
			t.Errorf("RCPT %d (%s): %s, want %s", i+1, rcpt, got, want)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: limited\r\n\r\nx\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ts.count("carl@contoso.test", "carl-secret", "INBOX"); n != 0 {
		t.Errorf("carl, refused, got %d messages", n)
	}
	if n := ts.count("bo@contoso.test", "bo-secret", "INBOX"); n != 1 {
		t.Errorf("bo got %d messages", n)
	}

	trusted := startServerText(t, text, serverOptions{})
	if err := trusted.send("client@example.org", []string{"anna@contoso.test", "bo@contoso.test", "carl@contoso.test"}, "Subject: x\n\nx\n"); err != nil {
		t.Fatalf("a trusted client limited: %v", err)
	}
}

// TestUnknownRecipientCap: past 20 unknown recipients on one connection
// the answers slow down, and past 30 the server answers 421 4.7.0 and
// closes the connection.
func TestUnknownRecipientCap(t *testing.T) {
	t.Parallel()
	const delay = 30 * time.Millisecond
	opts := untrusted
	opts.unknownRecipientDelay = delay
	ts := startServerWith(t, "", opts)
	c := dial(t, ts.smtp)
	if err := c.Mail("harvester@example.net", nil); err != nil {
		t.Fatal(err)
	}
	var slowStart time.Time
	for i := 1; i <= 30; i++ {
		if i == 21 {
			slowStart = time.Now()
		}
		if got := smtpCode(c.Rcpt("guess"+string(rune('a'+i%26))+"@contoso.test", nil)); got != "550 5.1.1" {
			t.Fatalf("unknown recipient %d: %s", i, got)
		}
	}
	if took := time.Since(slowStart); took < 10*delay {
		t.Errorf("answers 21 to 30 took %v, want at least %v", took, 10*delay)
	}
	if got := smtpCode(c.Rcpt("guess-last@contoso.test", nil)); got != "421 4.7.0" {
		t.Fatalf("unknown recipient 31: %s", got)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("the connection is still open after 421")
	}
	// A new connection starts again, and real recipients are still accepted.
	if err := ts.send("client@example.org", []string{"anna@contoso.test"}, "Subject: x\n\nx\n"); err != nil {
		t.Fatal(err)
	}
	// A trusted client is not capped.
	trusted := startServer(t, "")
	c = dial(t, trusted.smtp)
	if err := c.Mail("relay@contoso.test", nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 35; i++ {
		if got := smtpCode(c.Rcpt("typo@contoso.test", nil)); got != "550 5.1.1" {
			t.Fatalf("trusted client, unknown recipient %d: %s", i, got)
		}
	}
}

// TestReloadBetweenRcptAndData: a recipient accepted at RCPT is delivered
// even when a reload removes it before the end of DATA; the transaction
// runs under the directory of its MAIL.
func TestReloadBetweenRcptAndData(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := dial(t, ts.smtp)
	if err := c.Mail("client@example.org", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"anna@contoso.test", "bo@contoso.test"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	withoutBo := strings.Replace(baseConfig, "[user.bo]\naddress  = \"bo@contoso.test\"\npassword = \""+boHash+"\"\n", "", 1)
	if withoutBo == baseConfig {
		t.Fatal("test setup: bo not removed")
	}
	ts.writeConfig(withoutBo)
	if err := ts.srv.reload(ts.cfgPath); err != nil {
		t.Fatal(err)
	}
	if err := ts.send("client@example.org", []string{"bo@contoso.test"}, "Subject: x\n\nx\n"); smtpCode(err) != "550 5.1.1" {
		t.Fatalf("bo after the reload, new transaction: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: accepted before the reload\r\n\r\nx\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("DATA after the reload: %v", err)
	}
	ts.writeConfig(baseConfig)
	if err := ts.srv.reload(ts.cfgPath); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ user, pass string }{{"anna@contoso.test", "anna-secret"}, {"bo@contoso.test", "bo-secret"}} {
		if n := ts.count(u.user, u.pass, "INBOX"); n != 1 {
			t.Errorf("%s has %d messages, want 1", u.user, n)
		}
	}
}
