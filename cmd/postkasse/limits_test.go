package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/internal/syncbuf"
)

// Linux routes all of 127.0.0.0/8 to loopback, so a client can speak from
// 127.0.0.2, 127.0.0.3, ... to a listener on 127.0.0.1: each is another
// client address. The tests trust only 127.0.0.1.

// startLimited serves baseConfig with limitKeys added to its [limits]
// table and only 127.0.0.1 trusted.
func startLimited(t *testing.T, limitKeys string, opts serverOptions) *testServer {
	t.Helper()
	text := strings.Replace(baseConfig, "[limits]\n", "[limits]\n"+limitKeys, 1) +
		"\n[inbound]\ntrusted_networks = [\"127.0.0.1/32\"]\n"
	dir := t.TempDir()
	ts := &testServer{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.toml"), logs: &syncbuf.Buffer{}, opts: opts}
	ts.writeConfig(text)
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// dialFrom connects to addr from the local address from.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// greeting connects from `from` and returns the server's first line; the
// connection stays open until the test ends.
func greeting(t *testing.T, from, addr string) (net.Conn, string) {
	t.Helper()
	c := dialFrom(t, from, addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("greeting from %s: %v", from, err)
	}
	return c, line
}

func TestConnectionsPerAddressAcrossListeners(t *testing.T) {
	t.Parallel()
	ts := startLimited(t, "connections_per_ip = 3\n", serverOptions{})
	// Three connections from 127.0.0.2, on two listeners together.
	var held []net.Conn
	for _, addr := range []string{ts.smtp, ts.imap, ts.sub} {
		c, line := greeting(t, "127.0.0.2", addr)
		if strings.Contains(line, "BYE") || strings.HasPrefix(line, "421") {
			t.Fatalf("connection within the limit refused: %q", line)
		}
		held = append(held, c)
	}
	if _, line := greeting(t, "127.0.0.2", ts.smtp); !strings.HasPrefix(line, "421 4.7.0 ") {
		t.Errorf("4th connection on SMTP: %q, want 421 4.7.0", line)
	}
	if _, line := greeting(t, "127.0.0.2", ts.imap); !strings.HasPrefix(line, "* BYE ") {
		t.Errorf("4th connection on IMAP: %q, want * BYE", line)
	}
	// Another address, and the trusted one, are not affected.
	if _, line := greeting(t, "127.0.0.3", ts.smtp); !strings.HasPrefix(line, "220 ") {
		t.Errorf("another address: %q", line)
	}
	for range 5 {
		if _, line := greeting(t, "127.0.0.1", ts.imap); !strings.HasPrefix(line, "* OK") {
			t.Fatalf("trusted address: %q", line)
		}
	}
	// Closing one makes room again, once the server has seen it close.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, line := greeting(t, "127.0.0.2", ts.smtp)
		if strings.HasPrefix(line, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing one: still %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(ts.logs.String(), "address at its limit"); n != 1 {
		t.Errorf("refusals logged %d times, want once:\n%s", n, ts.logs)
	}
}

// imapLoginFrom logs in over IMAP from a local address.
func imapLoginFrom(t *testing.T, from, addr, user, pass string) error {
	t.Helper()
	c := imapclient.New(dialFrom(t, from, addr), nil)
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return err
	}
	return c.Login(user, pass).Wait()
}

// smtpAuthFrom authenticates on submission from a local address.
func smtpAuthFrom(t *testing.T, from, addr string, auth sasl.Client) error {
	t.Helper()
	c := gosmtp.NewClient(dialFrom(t, from, addr))
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		return err
	}
	return c.Auth(auth)
}

func TestFailedLoginsBlockThatAddressOnly(t *testing.T) {
	t.Parallel()
	ts := startLimited(t, "auth_failures = 3\nauth_failures_per_ip = 4\n", serverOptions{})
	// IMAP: three wrong passwords for anna from 127.0.0.2.
	for range 3 {
		if err := imapLoginFrom(t, "127.0.0.2", ts.imap, "anna@contoso.test", "wrong"); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	err := imapLoginFrom(t, "127.0.0.2", ts.imap, "anna@contoso.test", "anna-secret")
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Fatalf("right password from the blocked address: %v, want NO [UNAVAILABLE]", err)
	}
	// The pair is blocked on SMTP too; bo from the same address is not.
	if err := smtpAuthFrom(t, "127.0.0.2", ts.sub, sasl.NewPlainClient("", "anna@contoso.test", "anna-secret")); smtpCode(err) != "454 4.7.0" {
		t.Errorf("anna on submission from the blocked address: %v, want 454 4.7.0", err)
	}
	if err := imapLoginFrom(t, "127.0.0.2", ts.imap, "bo@contoso.test", "bo-secret"); err != nil {
		t.Errorf("bo from the address: %v", err)
	}
	if err := imapLoginFrom(t, "127.0.0.3", ts.imap, "anna@contoso.test", "anna-secret"); err != nil {
		t.Errorf("anna from another address: %v", err)
	}

	// SMTP AUTH LOGIN: carl's wrong passwords from 127.0.0.4 block carl
	// there (PLAIN with the right password is refused), not elsewhere.
	for range 3 {
		if err := smtpAuthFrom(t, "127.0.0.4", ts.sub, sasl.NewLoginClient("carl@contoso.test", "wrong")); smtpCode(err) != "535 5.7.8" {
			t.Fatalf("wrong password: %v, want 535 5.7.8", err)
		}
	}
	if err := smtpAuthFrom(t, "127.0.0.4", ts.sub, sasl.NewPlainClient("", "carl@contoso.test", "carl-secret")); smtpCode(err) != "454 4.7.0" {
		t.Errorf("right password from the blocked address: %v, want 454 4.7.0", err)
	}
	if err := smtpAuthFrom(t, "127.0.0.5", ts.sub, sasl.NewPlainClient("", "carl@contoso.test", "carl-secret")); err != nil {
		t.Errorf("carl from another address: %v", err)
	}

	// Four failures of any names from 127.0.0.6 block the address.
	for _, user := range []string{"a@contoso.test", "b@contoso.test", "c@contoso.test", "d@contoso.test"} {
		imapLoginFrom(t, "127.0.0.6", ts.imap, user, "guess")
	}
	if err := smtpAuthFrom(t, "127.0.0.6", ts.sub, sasl.NewPlainClient("", "bo@contoso.test", "bo-secret")); smtpCode(err) != "454 4.7.0" {
		t.Errorf("bo from the blocked address: %v, want 454 4.7.0", err)
	}
	if err := imapLoginFrom(t, "127.0.0.7", ts.imap, "bo@contoso.test", "bo-secret"); err != nil {
		t.Errorf("bo from another address: %v", err)
	}

	// The trusted address is never blocked.
	for range 4 {
		imapLoginFrom(t, "127.0.0.1", ts.imap, "anna@contoso.test", "wrong")
	}
	if err := imapLoginFrom(t, "127.0.0.1", ts.imap, "anna@contoso.test", "anna-secret"); err != nil {
		t.Errorf("trusted address: %v", err)
	}

	logs := ts.logs.String()
	if n := strings.Count(logs, "logins blocked"); n != 3 {
		t.Errorf("%d blocks logged, want 3 (anna and carl's pairs, 127.0.0.6):\n%s", n, logs)
	}
}

// smtpToData speaks raw SMTP up to DATA's 354.
func smtpToData(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := dialFrom(t, "127.0.0.1", addr)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	expect := func(prefix string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", prefix, err)
			}
			if len(line) > 3 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("got %q, want %s", line, prefix)
			}
			return
		}
	}
	expect("220")
	for _, cmd := range []struct{ line, want string }{
		{"EHLO slow.example.org", "250"}, {"MAIL FROM:<zoe@example.org>", "250"},
		{"RCPT TO:<anna@contoso.test>", "250"}, {"DATA", "354"},
	} {
		io.WriteString(c, cmd.line+"\r\n")
		expect(cmd.want)
	}
	return c, r
}

// TestTricklingDataIsCutOff: a message that trickles in is cut off at the
// transaction's deadline with 421 and the connection closed, while a slow
// but steady one, longer than the wait for each block, is accepted.
func TestTricklingDataIsCutOff(t *testing.T) {
	t.Parallel()
	ts := startLimited(t, "", serverOptions{smtpCommandTimeout: time.Second, smtpTransactionTimeout: 4 * time.Second})

	c, r := smtpToData(t, ts.smtp)
	io.WriteString(c, "Subject: slow\r\n\r\n")
	start := time.Now()
	replies := make(chan string, 1)
	go func() {
		all, _ := io.ReadAll(r) // until the server closes the connection
		replies <- string(all)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var got string
trickle:
	for {
		select {
		case got = <-replies:
			break trickle
		case <-tick.C:
			c.Write([]byte("x"))
		}
	}
	if !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Errorf("trickling DATA got %q, want 421 4.4.2 and the connection closed", got)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("cut off after %v, want about 4s", d)
	}

	// Steady: a line every 300ms for 1.5s, longer than the wait for a block
	// (the slack up to the 4s deadline is for a loaded machine).
	c, r = smtpToData(t, ts.smtp)
	io.WriteString(c, "Subject: steady\r\n\r\n")
	for range 5 {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(c, "a line\r\n")
	}
	io.WriteString(c, ".\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "250 ") {
		t.Errorf("steady DATA: %q %v, want 250", line, err)
	}
}

// TestReloadChangesLimits: a reload applies new limits and trusted
// networks to the next connections.
func TestReloadChangesLimits(t *testing.T) {
	t.Parallel()
	ts := startLimited(t, "connections_per_ip = 1\n", serverOptions{})
	greeting(t, "127.0.0.2", ts.smtp)
	if _, line := greeting(t, "127.0.0.2", ts.smtp); !strings.HasPrefix(line, "421 4.7.0 ") {
		t.Fatalf("2nd connection: %q, want 421", line)
	}
	ts.writeConfig(strings.Replace(baseConfig, "[limits]\n", "[limits]\nconnections_per_ip = 2\n", 1) +
		"\n[inbound]\ntrusted_networks = [\"127.0.0.1/32\", \"127.0.0.3\"]\n")
	if err := ts.srv.reload(ts.cfgPath); err != nil {
		t.Fatal(err)
	}
	if _, line := greeting(t, "127.0.0.2", ts.smtp); !strings.HasPrefix(line, "220 ") {
		t.Errorf("2nd connection after raising the limit: %q", line)
	}
	for range 3 {
		if _, line := greeting(t, "127.0.0.3", ts.smtp); !strings.HasPrefix(line, "220 ") {
			t.Errorf("newly trusted address: %q", line)
		}
	}
}

// TestServerWideBoundRefusesAndLogsOnce: at the bound on all connections
// (below the open-file limit in production), even trusted clients are told
// 421 4.3.2 or BYE, and the log says so once.
func TestServerWideBoundRefusesAndLogsOnce(t *testing.T) {
	t.Parallel()
	ts := startLimited(t, "", serverOptions{maxConnections: 3})
	for _, addr := range []string{ts.smtp, ts.imap, ts.sub} {
		greeting(t, "127.0.0.1", addr)
	}
	for range 3 {
		if _, line := greeting(t, "127.0.0.1", ts.smtp); !strings.HasPrefix(line, "421 4.3.2 ") {
			t.Errorf("past the bound on SMTP: %q, want 421 4.3.2", line)
		}
		if _, line := greeting(t, "127.0.0.2", ts.imap); !strings.HasPrefix(line, "* BYE ") {
			t.Errorf("past the bound on IMAP: %q, want BYE", line)
		}
	}
	if n := strings.Count(ts.logs.String(), "connection limit reached"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, ts.logs)
	}
}

func TestConnectionBudgetLeavesDescriptors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fds  uint64
		want int
	}{{0, 0}, {256, 128}, {1024, 768}, {65536, 57344}, {1 << 20, 917504}} {
		if got := connectionBudget(tc.fds); got != tc.want {
			t.Errorf("connectionBudget(%d) = %d, want %d", tc.fds, got, tc.want)
		}
	}
}

// httpFrom is an HTTP client that speaks from the local address from,
// one connection per request.
func httpFrom(from string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// profileStatus fetches the logged-in Apple profile as user from `from`.
func profileStatus(t *testing.T, from, addr, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/apple/profile.mobileconfig", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	resp, err := httpFrom(from).Do(req)
	if err != nil {
		t.Fatalf("GET from %s: %v", from, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHTTPLimits: the HTTP listener shares the connection count (the next
// connection gets 503) and the failed-login blocks of SPEC §11.
func TestHTTPLimits(t *testing.T) {
	t.Parallel()
	ts := startLimited(t, "connections_per_ip = 2\nauth_failures = 2\n", serverOptions{})
	greeting(t, "127.0.0.8", ts.smtp)
	greeting(t, "127.0.0.8", ts.imap)
	c := dialFrom(t, "127.0.0.8", ts.http)
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 503 ") {
		t.Errorf("3rd connection on HTTP: %q (%v), want 503", line, err)
	}
	for range 2 {
		if code := profileStatus(t, "127.0.0.9", ts.http, "anna@contoso.test", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", code)
		}
	}
	if code := profileStatus(t, "127.0.0.9", ts.http, "anna@contoso.test", "anna-secret"); code != http.StatusUnauthorized {
		t.Errorf("right password from the blocked address: %d, want 401", code)
	}
	if code := profileStatus(t, "127.0.0.10", ts.http, "anna@contoso.test", "anna-secret"); code != http.StatusOK {
		t.Errorf("right password from another address: %d, want 200", code)
	}
}
