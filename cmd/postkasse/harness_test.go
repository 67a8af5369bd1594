package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/internal/syncbuf"
)

// The demo users' hashes (README passwords), so tests pay no bcrypt for
// hashing. They have bcrypt's lowest cost, 4, so a login costs about a
// millisecond even under -race on a loaded machine: timing tests (the
// delay of a refused login) then measure the delay and not bcrypt's noise.
const (
	annaHash = "$2a$04$rPWsl61qAry11dFOnOwKy.ncV.ISMU72G8MZ2QwzAYxMXDWcMxpyO" // anna-secret
	boHash   = "$2a$04$/rTUUM1W2ENtY9g9lg4zA.6sV2teYet49F69m1cogcc5r/wIxsfC6" // bo-secret
	carlHash = "$2a$04$8.jC/5..fLdwO6/J4dGude4j9k0b7jvBoT.mpeuu7d0T8A4mfKoym" // carl-secret
)

// baseConfig is a small organisation; tests append tables to it. DATA is
// replaced with the test's data directory.
var baseConfig = `
hostname = "mail.contoso.test"
data_dir = "DATA"
domains  = ["contoso.test", "fourthcoffee.test"]

[limits]
message_size = "64KiB"

[user.anna]
address  = "anna@contoso.test"
name     = "Anna Andersen"
password = "` + annaHash + `"
aliases  = ["support@contoso.test"]

[user.bo]
address  = "bo@contoso.test"
password = "` + boHash + `"

[user.carl]
address  = "carl@contoso.test"
password = "` + carlHash + `"
`

// testServer is the whole server in-process on loopback listeners.
type testServer struct {
	t       testing.TB
	dir     string
	cfgPath string
	srv     *server
	smtp    string
	sub     string
	imap    string
	subs    string // implicit TLS listeners, when [tls] is set
	imaps   string
	http    string // address books and client setup
	https   string // when [tls] or listen.https is set
	logs    *syncbuf.Buffer
	stopped bool
	opts    serverOptions
	dsn     string // the store's database when the suite runs on PostgreSQL
}

// startServer writes the config (baseConfig + extra) and serves it.
func startServer(t testing.TB, extra string) *testServer {
	t.Helper()
	return startServerPort(t, extra, 0)
}

// startServerPort is startServer with the queue delivering to queuePort
// instead of 25 (the port of the test's sink servers).
func startServerPort(t testing.TB, extra string, queuePort int) *testServer {
	t.Helper()
	return startServerWith(t, extra, serverOptions{queuePort: queuePort})
}

// startServerWith is startServer with options that are not in the file.
func startServerWith(t testing.TB, extra string, opts serverOptions) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.toml"), logs: &syncbuf.Buffer{}, opts: opts}
	ts.writeConfig(baseConfig + extra)
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) writeConfig(text string) {
	ts.t.Helper()
	text = strings.ReplaceAll(text, "DATA", filepath.Join(ts.dir, "data"))
	if !strings.Contains(text, "\n[store]\n") {
		// A test may write back a file it read, which has the table.
		text += ts.storeTable()
	}
	if err := os.WriteFile(ts.cfgPath, []byte(text), 0o600); err != nil {
		ts.t.Fatal(err)
	}
}

func (ts *testServer) start() {
	ts.t.Helper()
	cfg, err := config.Load(ts.cfgPath)
	if err != nil {
		ts.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := newServer(cfg, log, ts.opts)
	if err != nil {
		ts.t.Fatal(err)
	}
	lns := map[string]net.Listener{}
	names := []string{"smtp", "submission", "imap", "http"}
	tlsOn := cfg.TLS.Cert != "" || cfg.TLS.ACME != nil
	if tlsOn {
		names = append(names, "submissions", "imaps")
	}
	if tlsOn || cfg.Listen.HTTPS != "" {
		names = append(names, "https")
	}
	for _, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ts.t.Fatal(err)
		}
		lns[name] = ln
	}
	ts.smtp, ts.sub, ts.imap = lns["smtp"].Addr().String(), lns["submission"].Addr().String(), lns["imap"].Addr().String()
	if tlsOn {
		ts.subs, ts.imaps = lns["submissions"].Addr().String(), lns["imaps"].Addr().String()
	}
	ts.http = lns["http"].Addr().String()
	if tlsOn || cfg.Listen.HTTPS != "" {
		ts.https = lns["https"].Addr().String()
	}
	if err := srv.serve(lns); err != nil {
		ts.t.Fatal(err)
	}
	ts.srv, ts.stopped = srv, false
}

func (ts *testServer) stop() {
	if ts.stopped {
		return
	}
	ts.stopped = true
	ts.srv.stop(5 * time.Second)
	if ts.t.Failed() {
		ts.t.Logf("server log:\n%s", ts.logs.String())
	}
}

func (ts *testServer) restart() {
	ts.t.Helper()
	ts.stop()
	ts.start()
}

// send delivers a message over the MX port; it returns the server's error.
func (ts *testServer) send(from string, to []string, msg string) error {
	return sendMail(ts.smtp, nil, from, to, msg)
}

// submit sends a message through submission as user.
func (ts *testServer) submit(user, pass, from string, to []string, msg string) error {
	return sendMail(ts.sub, sasl.NewPlainClient("", user, pass), from, to, msg)
}

func sendMail(addr string, auth sasl.Client, from string, to []string, msg string) error {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		return err
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, strings.ReplaceAll(msg, "\n", "\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// login opens an IMAP session.
func (ts *testServer) login(user, pass string, handler *imapclient.UnilateralDataHandler) *imapclient.Client {
	ts.t.Helper()
	c, err := imapclient.DialInsecure(ts.imap, &imapclient.Options{UnilateralDataHandler: handler})
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		ts.t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func smtpCode(err error) string {
	if e, ok := err.(*gosmtp.SMTPError); ok {
		return fmt.Sprintf("%d %d.%d.%d", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
	}
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func message(from, to, subject, body string) string {
	return fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s@test>\nDate: Mon, 02 Nov 2026 10:00:00 +0000\n\n%s\n",
		from, to, subject, strings.ReplaceAll(subject, " ", "-"), body)
}

// blobStats counts the bodies the server's store holds. Both backends
// have BlobStats; the server itself does not need it, so storeBackend
// leaves it out.
func blobStats(st storeBackend) (count int, bytes int64, err error) {
	return st.(interface {
		BlobStats() (int, int64, error)
	}).BlobStats()
}
