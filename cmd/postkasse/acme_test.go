package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// pebbleVersion is Let's Encrypt's test ACME server; later versions omit
// the Location header on finalize that x/crypto/acme v0.58 needs.
const pebbleVersion = "github.com/letsencrypt/pebble/v2@v2.8.0"

// pebble is a running pebble: its directory, the roots that verify its
// own TLS, and the root that verifies the certificates it issues.
type pebble struct {
	acme   string         // the address of its directory
	roots  *x509.CertPool // for the directory's TLS
	issuer *x509.CertPool // for the certificates it issues
	mgmt   string         // its management address
	cmd    *exec.Cmd
}

// buildPebble builds pebble from the module proxy and configures it for
// loopback ports, every challenge taken as valid; run starts it. Without
// the go tool or the proxy the test is skipped, except in CI, where it
// fails.
//
// validity is the lifetime of the certificates it issues, in seconds.
func buildPebble(t *testing.T, validity int) *pebble {
	t.Helper()
	unavailable := t.Skipf
	if os.Getenv("CI") == "true" {
		unavailable = t.Fatalf
	}
	work := t.TempDir()
	var out bytes.Buffer
	download := exec.Command("go", "mod", "download", "-json", pebbleVersion)
	download.Dir, download.Stdout, download.Stderr = work, &out, &out
	if err := download.Run(); err != nil {
		unavailable("cannot download pebble: %v\n%s", err, out.String())
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out.Bytes(), &mod); err != nil || mod.Dir == "" {
		unavailable("go mod download: %v %s", err, out.String())
	}
	install := exec.Command("go", "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@v2.8.0")
	install.Dir, install.Env = work, append(os.Environ(), "GOBIN="+work, "GOFLAGS=-mod=mod")
	if b, err := install.CombinedOutput(); err != nil {
		unavailable("cannot build pebble: %v\n%s", err, b)
	}
	p := &pebble{roots: x509.NewCertPool()}
	ca, err := os.ReadFile(filepath.Join(mod.Dir, "test/certs/pebble.minica.pem"))
	if err != nil || !p.roots.AppendCertsFromPEM(ca) {
		t.Fatalf("pebble's test root: %v", err)
	}
	acmeAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": acmeAddr, "managementListenAddress": mgmtAddr,
		"certificate": filepath.Join(mod.Dir, "test/certs/localhost/cert.pem"),
		"privateKey":  filepath.Join(mod.Dir, "test/certs/localhost/key.pem"),
		"httpPort":    5002, "tlsPort": 5001,
		"retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles":   map[string]any{"default": map[string]any{"description": "test", "validityPeriod": validity}},
	}}
	confPath := filepath.Join(work, "pebble-config.json")
	data, _ := json.Marshal(conf)
	if err := os.WriteFile(confPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(filepath.Join(work, "pebble"), "-config", confPath)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	p.acme, p.mgmt = acmeAddr, mgmtAddr
	return p
}

// run starts pebble and waits until it answers.
func (p *pebble) run(t *testing.T) {
	t.Helper()
	logs := &bytes.Buffer{}
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots}}, Timeout: 5 * time.Second}
	p.issuer = x509.NewCertPool()
	deadline := time.Now().Add(30 * time.Second)
	for {
		root, err := get(client, "https://"+p.mgmt+"/roots/0")
		if err == nil && p.issuer.AppendCertsFromPEM(root) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *pebble) stop() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func get(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// TestACMERenewal: a certificate due for renewal is renewed and served
// without a restart.
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	// Ten-day certificates, renewed 30 days before expiry: at once.
	p := buildPebble(t, 10*24*3600)
	p.run(t)
	ts := startServerWith(t, fmt.Sprintf("[listen]\nhttps = \"127.0.0.1:0\"\n[tls.acme]\ndirectory = %q\n", "https://"+p.acme+"/dir"),
		serverOptions{acmeRoots: p.roots, acmeRetry: 200 * time.Millisecond, acmeRenewBefore: 30 * 24 * time.Hour})
	first := imapsCertificate(t, ts.imaps, p.issuer, time.Minute)
	deadline := time.Now().Add(time.Minute)
	for {
		next := imapsCertificate(t, ts.imaps, p.issuer, 10*time.Second)
		if !next.Equal(first) {
			t.Logf("renewed: serial %s, then %s", first.SerialNumber, next.SerialNumber)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the certificate was not renewed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gate is a TCP proxy to a target that holds every connection until open
// is closed.
type gate struct {
	addr string
	open chan struct{}
	once sync.Once
}

// release opens the gate.
func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{addr: ln.Addr().String(), open: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); g.release() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.pass(c, target)
		}
	}()
	return g
}

func (g *gate) pass(c net.Conn, target string) {
	defer c.Close()
	<-g.open
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
}

// freeAddr returns a loopback address with a port free a moment ago, for
// a server in another process that must bind it itself.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// imapsCertificate connects to IMAPS, verifying the certificate for
// mail.contoso.test against roots, and returns it after the greeting.
func imapsCertificate(t *testing.T, addr string, roots *x509.CertPool, timeout time.Duration) *x509.Certificate {
	t.Helper()
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: "mail.contoso.test", RootCAs: roots})
	if err != nil {
		t.Fatalf("IMAPS handshake: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	greeting := make([]byte, 5)
	if _, err := io.ReadFull(conn, greeting); err != nil || string(greeting) != "* OK " {
		t.Fatalf("IMAPS greeting %q: %v", greeting, err)
	}
	return conn.ConnectionState().PeerCertificates[0]
}

func offersSTARTTLS(t *testing.T, addr string) bool {
	t.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatal(err)
	}
	ok, _ := c.Extension("STARTTLS")
	return ok
}

// TestACMECertificate: with pebble as the directory, IMAPS presents a
// certificate for hostname issued by pebble within a minute of start;
// STARTTLS, not offered before, is offered from then on without a
// restart; after a restart, with pebble gone, the same certificate is
// served from the store.
func TestACMECertificate(t *testing.T) {
	t.Parallel()
	p := buildPebble(t, 90*24*3600)
	p.run(t)
	// The server reaches the directory through a gate held shut, so that
	// no certificate can arrive before the first look at STARTTLS.
	g := newGate(t, p.acme)
	ts := startServerWith(t, fmt.Sprintf("[listen]\nhttps = \"127.0.0.1:0\"\n[tls.acme]\ndirectory = %q\nemail = \"postmaster@contoso.test\"\n", "https://"+g.addr+"/dir"),
		serverOptions{acmeRoots: p.roots, acmeRetry: 200 * time.Millisecond})
	if offersSTARTTLS(t, ts.sub) {
		t.Fatal("STARTTLS offered before any certificate")
	}
	g.release()
	start := time.Now()
	cert := imapsCertificate(t, ts.imaps, p.issuer, time.Minute)
	if !slices.Contains(cert.DNSNames, "mail.contoso.test") {
		t.Fatalf("certificate for %v", cert.DNSNames)
	}
	t.Logf("certificate from pebble after %v: serial %s, issuer %q", time.Since(start), cert.SerialNumber, cert.Issuer.CommonName)

	// The https listener serves the same certificate.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "mail.contoso.test", RootCAs: p.issuer}}}
	resp, err := hc.Get("https://" + ts.https + "/")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0]; !got.Equal(cert) {
		t.Fatal("https serves another certificate")
	}

	// STARTTLS, not offered before, is offered once the certificate is in
	// hand, without a restart, on the same sockets.
	deadline := time.Now().Add(30 * time.Second)
	for !offersSTARTTLS(t, ts.sub) {
		if time.Now().After(deadline) {
			t.Fatal("STARTTLS still not offered with a certificate in hand")
		}
		time.Sleep(20 * time.Millisecond)
	}
	clientTLS := &tls.Config{ServerName: "mail.contoso.test", RootCAs: p.issuer}
	c, err := gosmtp.DialStartTLS(ts.sub, clientTLS)
	if err != nil {
		t.Fatalf("submission STARTTLS with the ACME certificate: %v", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "anna@contoso.test", "anna-secret")); err != nil {
		t.Fatalf("AUTH after STARTTLS: %v", err)
	}
	c.Close()
	ic, err := imapclient.DialStartTLS(ts.imap, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatalf("IMAP STARTTLS with the ACME certificate: %v", err)
	}
	if err := ic.Login("anna@contoso.test", "anna-secret").Wait(); err != nil {
		t.Fatalf("IMAP LOGIN after STARTTLS: %v", err)
	}
	ic.Close()
	if !offersSTARTTLS(t, ts.smtp) {
		t.Fatal("MX port does not offer STARTTLS")
	}

	p.stop()
	ts.restart()
	again := imapsCertificate(t, ts.imaps, p.issuer, 10*time.Second)
	if !again.Equal(cert) {
		t.Fatalf("after restart: serial %s, want the stored %s", again.SerialNumber, cert.SerialNumber)
	}
	if !offersSTARTTLS(t, ts.sub) {
		t.Fatal("STARTTLS not offered with a stored certificate")
	}
	c, err = gosmtp.DialStartTLS(ts.sub, clientTLS)
	if err != nil {
		t.Fatalf("STARTTLS after restart: %v", err)
	}
	c.Close()
}
