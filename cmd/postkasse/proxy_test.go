package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"
	proxyproto "github.com/pires/go-proxyproto"

	"postkasse.dev/postkasse/internal/syncbuf"
	"postkasse.dev/postkasse/internal/testcert"
	"postkasse.dev/postkasse/internal/testdns"
)

// startProxied serves baseConfig with limitKeys in [limits] and extra
// tables, 127.0.0.9 as the load balancer (listen.proxy_protocol) and only
// 192.0.2.100 trusted. The harness's own clients come from 127.0.0.1.
func startProxied(t *testing.T, limitKeys, extra string) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.toml"), logs: &syncbuf.Buffer{}}
	ts.writeConfig(strings.Replace(baseConfig, "[limits]\n", "[limits]\n"+limitKeys, 1) + "[listen]\nproxy_protocol = [\"127.0.0.9\"]\n" +
		"[inbound]\nspf = false\ndkim = false\ndmarc = false\ntrusted_networks = [\"192.0.2.100\"]\n" + extra)
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// dialProxied connects from `from` to addr and sends a PROXY header of
// version (1 or 2) naming client as the connection's source.
func dialProxied(t *testing.T, from, addr, client string, version byte) net.Conn {
	t.Helper()
	c := dialFrom(t, from, addr)
	src := &net.TCPAddr{IP: net.ParseIP(client), Port: 40000}
	h := proxyproto.HeaderProxyFromAddrs(version, src, c.RemoteAddr())
	if _, err := h.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// firstLine reads the server's first line on c.
func firstLine(t *testing.T, c net.Conn) string {
	t.Helper()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("first line: %v", err)
	}
	return line
}

// sendOver delivers a message from `from` to anna over an open MX
// connection.
func sendOver(c net.Conn, from, subject string) error {
	cl := gosmtp.NewClient(c)
	defer cl.Close()
	if err := cl.Hello("client.example.org"); err != nil {
		return err
	}
	if err := cl.SendMail(from, []string{"anna@contoso.test"}, strings.NewReader(message(from, "anna@contoso.test", subject, "hello"))); err != nil {
		return err
	}
	return cl.Quit()
}

// A balancer's PROXY header, v1 or v2, gives the client's address to the
// Received header, the logs and the trusted-networks decision.
func TestProxyProtocolClientAddress(t *testing.T) {
	t.Parallel()
	ts := startProxied(t, "", "")
	for _, v := range []byte{1, 2} {
		subject := fmt.Sprintf("through PROXY v%d", v)
		if err := sendOver(dialProxied(t, "127.0.0.9", ts.smtp, "192.0.2.7", v), "x@example.org", subject); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
	}
	hs := ts.headers("anna@contoso.test", "anna-secret", "INBOX")
	for _, v := range []byte{1, 2} {
		h, ok := hs[fmt.Sprintf("through PROXY v%d", v)]
		if !ok {
			t.Fatalf("v%d: message not delivered: %v", v, hs)
		}
		if rcvd := h.Get("Received"); !strings.Contains(rcvd, "192.0.2.7") || strings.Contains(rcvd, "127.0.0.9") {
			t.Errorf("v%d: Received %q, want the client 192.0.2.7 and not the balancer", v, rcvd)
		}
	}
	// An own-domain MAIL FROM without SPF pass is refused from an outside
	// client, accepted from a trusted one: the decision sees the header's
	// address, not the balancer's.
	err := sendOver(dialProxied(t, "127.0.0.9", ts.smtp, "192.0.2.7", 2), "bo@contoso.test", "spoof")
	if code := smtpCode(err); !strings.HasPrefix(code, "5") {
		t.Errorf("own-domain sender from outside through the balancer: %v, want 5xx", err)
	}
	if err := sendOver(dialProxied(t, "127.0.0.9", ts.smtp, "192.0.2.100", 1), "bo@contoso.test", "trusted"); err != nil {
		t.Errorf("own-domain sender from the trusted 192.0.2.100 through the balancer: %v", err)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "remote=192.0.2.7:40000 trusted=false") || !strings.Contains(logs, "remote=192.0.2.100:40000 trusted=true") {
		t.Errorf("logs do not name the clients:\n%s", logs)
	}
}

// The per-address connection limit counts the client behind the balancer
// on every listener, implicit TLS included (the header comes before the
// handshake), and the balancer itself not at all.
func TestProxyProtocolConnectionLimit(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t, "mail.contoso.test", "127.0.0.1")
	certPath, keyPath := cert.WriteFiles(t, t.TempDir())
	ts := startProxied(t, "connections_per_ip = 1\n", fmt.Sprintf("[tls]\ncert = %q\nkey = %q\n", certPath, keyPath))

	if line := firstLine(t, dialProxied(t, "127.0.0.9", ts.smtp, "192.0.2.7", 1)); !strings.HasPrefix(line, "220 ") {
		t.Fatalf("first connection for 192.0.2.7: %q", line)
	}
	if line := firstLine(t, dialProxied(t, "127.0.0.9", ts.smtp, "192.0.2.7", 2)); !strings.HasPrefix(line, "421 4.7.0 ") {
		t.Errorf("second connection for 192.0.2.7: %q, want 421 4.7.0", line)
	}
	if line := firstLine(t, dialProxied(t, "127.0.0.9", ts.imap, "192.0.2.7", 2)); !strings.HasPrefix(line, "* BYE ") {
		t.Errorf("IMAP for 192.0.2.7: %q, want * BYE", line)
	}
	tc := tls.Client(dialProxied(t, "127.0.0.9", ts.imaps, "192.0.2.7", 1), cert.Client)
	if line := firstLine(t, tc); !strings.HasPrefix(line, "* BYE ") {
		t.Errorf("IMAPS for 192.0.2.7: %q, want * BYE after the handshake", line)
	}
	hc := dialProxied(t, "127.0.0.9", ts.http, "192.0.2.7", 2)
	io.WriteString(hc, "GET / HTTP/1.1\r\nHost: mail.contoso.test\r\n\r\n")
	if line := firstLine(t, hc); !strings.Contains(line, " 503 ") {
		t.Errorf("HTTP for 192.0.2.7: %q, want 503", line)
	}
	// Another client through the same balancer is its own count.
	if line := firstLine(t, dialProxied(t, "127.0.0.9", ts.smtp, "192.0.2.8", 1)); !strings.HasPrefix(line, "220 ") {
		t.Errorf("192.0.2.8 through the same balancer: %q", line)
	}
	tc = tls.Client(dialProxied(t, "127.0.0.9", ts.subs, "192.0.2.9", 2), cert.Client)
	if line := firstLine(t, tc); !strings.HasPrefix(line, "220 ") {
		t.Errorf("submissions for 192.0.2.9: %q", line)
	}
}

// Failed logins block the client behind the balancer, not the balancer.
func TestProxyProtocolLoginBlocks(t *testing.T) {
	t.Parallel()
	ts := startProxied(t, "auth_failures = 3\n", "")
	login := func(client, pass string) error {
		c := imapclient.New(dialProxied(t, "127.0.0.9", ts.imap, client, 2), nil)
		defer c.Close()
		if err := c.WaitGreeting(); err != nil {
			return err
		}
		return c.Login("anna@contoso.test", pass).Wait()
	}
	for range 3 {
		if err := login("192.0.2.7", "wrong"); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	if err := login("192.0.2.7", "anna-secret"); err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Errorf("right password for the blocked 192.0.2.7: %v, want NO [UNAVAILABLE]", err)
	}
	if err := login("192.0.2.8", "anna-secret"); err != nil {
		t.Errorf("192.0.2.8 through the same balancer: %v", err)
	}
}

// Only the listed balancers are believed, and they must send a header;
// a reload changes the list.
func TestProxyProtocolOnlyFromBalancers(t *testing.T) {
	t.Parallel()
	ts := startProxied(t, "", "")
	// 127.0.0.2 is no balancer: its header is a line of garbage to SMTP.
	c := dialProxied(t, "127.0.0.2", ts.smtp, "192.0.2.7", 1)
	r := bufio.NewReader(c)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "220 ") {
		t.Fatalf("greeting: %q", line)
	}
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "5") {
		t.Errorf("a PROXY line from a non-balancer: %q, want a 5xx", line)
	}
	io.WriteString(c, "EHLO client.example.org\r\n")
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "250") {
		t.Fatalf("EHLO: %q", line)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "remote=127.0.0.2:") || strings.Contains(logs, "192.0.2.7") {
		t.Errorf("the non-balancer's header changed its address:\n%s", logs)
	}
	// The balancer without a header is closed without a word.
	c = dialFrom(t, "127.0.0.9", ts.smtp)
	io.WriteString(c, "EHLO client.example.org\r\n")
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Errorf("balancer without a header: read %q, %v; want the connection closed", b, err)
	}

	// Reload: 127.0.0.2 becomes the balancer, 127.0.0.9 a plain client.
	text, err := os.ReadFile(ts.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ts.writeConfig(strings.Replace(string(text), `proxy_protocol = ["127.0.0.9"]`, `proxy_protocol = ["127.0.0.2/32"]`, 1))
	if err := ts.srv.reload(ts.cfgPath); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ts.logs.String(), "next restart") {
		t.Errorf("proxy_protocol asked for a restart:\n%s", ts.logs)
	}
	if err := sendOver(dialProxied(t, "127.0.0.2", ts.smtp, "192.0.2.7", 2), "x@example.org", "after reload"); err != nil {
		t.Fatal(err)
	}
	if line := firstLine(t, dialFrom(t, "127.0.0.9", ts.smtp)); !strings.HasPrefix(line, "220 ") {
		t.Errorf("127.0.0.9 without a header after the reload: %q", line)
	}
	h := ts.headers("anna@contoso.test", "anna-secret", "INBOX")["after reload"]
	if rcvd := h.Get("Received"); !strings.Contains(rcvd, "192.0.2.7") {
		t.Errorf("Received %q after the reload, want 192.0.2.7", rcvd)
	}
}

// The policy requires a header from a listed balancer (also when the
// socket reports it as an IPv4-mapped IPv6 address) and skips the rest.
func TestProxyPolicy(t *testing.T) {
	t.Parallel()
	peers := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::5/128")}
	policy := proxyPolicy(func() []netip.Prefix { return peers })
	for addr, want := range map[string]proxyproto.Policy{
		"10.1.2.3:4000":          proxyproto.REQUIRE,
		"[::ffff:10.1.2.3]:4000": proxyproto.REQUIRE,
		"[2001:db8::5]:4000":     proxyproto.REQUIRE,
		"10.2.0.1:4000":          proxyproto.SKIP,
		"[2001:db8::6]:4000":     proxyproto.SKIP,
	} {
		got, err := policy(proxyproto.ConnPolicyOptions{Upstream: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))})
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", addr, got, err, want)
		}
	}
}

// FuzzProxyHeader sends arbitrary bytes from a balancer. Whatever they
// are, the listener goes on: the next connection with a good header is
// accepted with the client's address.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\nEHLO x\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 ::1 40000 25\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP4 999.0.2.7 127.0.0.1 40000 25\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x9c\x40\x00\x19"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"))
	f.Add([]byte("EHLO x\r\n"))
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	peers := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	ln := proxyListen(raw, func() []netip.Prefix { return peers }, slog.New(slog.DiscardHandler))
	f.Cleanup(func() { ln.Close() })
	port := 0
	f.Fuzz(func(t *testing.T, input []byte) {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(input)
		c.(*net.TCPConn).CloseWrite()
		port++
		want := &net.TCPAddr{IP: net.ParseIP("192.0.2.77").To4(), Port: port}
		probe, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close()
		if _, err := proxyproto.HeaderProxyFromAddrs(2, want, probe.RemoteAddr()).WriteTo(probe); err != nil {
			t.Fatal(err)
		}
		got := make(chan net.Addr)
		go func() {
			for {
				a, err := ln.Accept()
				if err != nil {
					got <- nil
					return
				}
				a.Close()
				if a.RemoteAddr().String() == want.String() {
					got <- a.RemoteAddr()
					return
				}
			}
		}()
		select {
		case a := <-got:
			if a == nil {
				t.Fatalf("after %q the listener stopped", input)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after %q the good header was not accepted", input)
		}
	})
}

// SPF is checked against the client behind the balancer.
func TestProxyProtocolSPF(t *testing.T) {
	t.Parallel()
	dns := testdns.New(t, `proxied.example. TXT "v=spf1 ip4:192.0.2.7 -all"`)
	ts := startServerText(t, baseConfig+"[listen]\nproxy_protocol = [\"127.0.0.9\"]\n[dns]\nresolver = \""+dns.Addr+"\"\n"+
		"[inbound]\ntrusted_networks = []\n", serverOptions{dnsTimeout: 2 * time.Second})
	cases := []struct {
		client  string
		version byte
		want    string
	}{{"192.0.2.7", 1, "spf=pass"}, {"192.0.2.7", 2, "spf=pass"}, {"192.0.2.8", 2, "spf=fail"}}
	subject := func(client string, version byte) string { return fmt.Sprintf("from %s v%d", client, version) }
	for _, c := range cases {
		if err := sendOver(dialProxied(t, "127.0.0.9", ts.smtp, c.client, c.version), "x@proxied.example", subject(c.client, c.version)); err != nil {
			t.Fatalf("%s: %v", subject(c.client, c.version), err)
		}
	}
	hs := ts.headers("anna@contoso.test", "anna-secret", "INBOX")
	for _, c := range cases {
		h := hs[subject(c.client, c.version)]
		ours, _ := ourResults(t, h)
		if len(ours) != 1 || !strings.HasPrefix(resultsText(ours[0]), c.want+" ") {
			t.Errorf("%s: Authentication-Results %q, want %s", subject(c.client, c.version), h.Values("Authentication-Results"), c.want)
		}
	}
}
