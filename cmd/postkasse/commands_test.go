package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"postkasse.dev/postkasse/password"
	"postkasse.dev/postkasse/srs"
	"postkasse.dev/postkasse/store"
)

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "-config", "../../config.example.toml"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("check of the example: exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{"valid", "anna", "info@contoso.test (full,send_as)", "carl", "info@contoso.test (read)", "sales@contoso.test",
		"spf on, dkim on, dmarc on", "127.0.0.0/8, ::1/128 (no checks)", "system ("} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "warning: nobody receives postmaster") {
		t.Errorf("check warns about postmaster in the example, which names one:\n%s", out.String())
	}
	withAccount := filepath.Join(t.TempDir(), "connected.toml")
	os.WriteFile(withAccount, []byte(baseConfig+`
[[user.anna.connected]]
host = "imap.example.org:993"
username = "anna@example.org"
password = "app-password"
delete_remote = true
`), 0o600)
	out.Reset()
	if code := run([]string{"check", "-config", withAccount}, nil, &out, &errOut); code != 0 {
		t.Fatalf("check with a connected account: exit %d\n%s", code, errOut.String())
	}
	if !regexp.MustCompile(`anna +anna@example.org at imap.example.org:993 \(tls\) +INBOX +INBOX, remote copy deleted +5m0s`).MatchString(out.String()) {
		t.Errorf("check does not list the connected account:\n%s", out.String())
	}
	// The test configuration names no postmaster: check says so, for each
	// domain, and the example file (which names one) has no such warning.
	for _, domain := range []string{"contoso.test", "fourthcoffee.test"} {
		if !strings.Contains(out.String(), "warning: nobody receives postmaster@"+domain) {
			t.Errorf("check does not warn about postmaster@%s:\n%s", domain, out.String())
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte(strings.Replace(baseConfig, `aliases  = ["support@contoso.test"]`, `aliases  = ["bo@contoso.test"]`, 1)), 0o600)
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check", "-config", bad}, nil, &out, &errOut); code != 1 {
		t.Fatalf("check of a bad file: exit %d", code)
	}
	if !strings.Contains(errOut.String(), bad+`:16: user.bo.address: "bo@contoso.test" is already the address of user.anna`) {
		t.Fatalf("check error:\n%s", errOut.String())
	}
}

// TestCheckShowsInboundChecks: check says which checks run, for whom,
// with which DNS server, and where certificates come from.
func TestCheckShowsInboundChecks(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte(strings.Replace(baseConfig, "[limits]", `[listen]
https = ":443"
[tls.acme]
directory = "https://acme.example/dir"
[dns]
resolver = "127.0.0.1:5353"
[inbound]
dkim = false
trusted_networks = ["192.0.2.0/24"]
[limits]`, 1)), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "-config", path}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{"spf on, dkim off, dmarc on", "192.0.2.0/24 (no checks)", "127.0.0.1:5353",
		"ACME from https://acme.example/dir for mail.contoso.test (TLS-ALPN-01 on :443)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestResolveCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"resolve", "-config", "../../config.example.toml", "Sales@contoso.test"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("resolve: exit %d %s", code, errOut.String())
	}
	for _, want := range []string{"bo@contoso.test", "info@contoso.test", "partner@fabrikam.example"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("resolve output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	run([]string{"resolve", "-config", "../../config.example.toml", "support@contoso.test"}, nil, &out, &errOut)
	if !strings.Contains(out.String(), "anna@contoso.test") {
		t.Errorf("resolve of an alias:\n%s", out.String())
	}

	// An SRS address of this server goes back to the original sender.
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o700)
	secret := []byte("0123456789abcdef0123456789abcdef")
	os.WriteFile(filepath.Join(data, "srs.key"), secret, 0o600)
	cfgPath := filepath.Join(dir, "config.toml")
	os.WriteFile(cfgPath, []byte(strings.ReplaceAll(baseConfig, "DATA", data)), 0o600)
	addr, err := srs.New(secret, "contoso.test").Forward("client@example.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr, want string
		code       int
	}{
		{addr, "goes back to client@example.org", 0},
		{"SRS0=xxxx=AB=example.org=client@contoso.test", "not a valid one of this server", 1},
		{"nobody@contoso.test", "refused with 550 5.1.1", 1},
		{"not an address", "not a valid address", 1},
		{"anna+tag@contoso.test", "subaddress of anna@contoso.test", 0},
	} {
		out.Reset()
		if code := run([]string{"resolve", "-config", cfgPath, tc.addr}, nil, &out, &errOut); code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("resolve %s: exit %d\n%s", tc.addr, code, out.String())
		}
	}
}

func TestPasswdCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"passwd"}, strings.NewReader("s3cret pass\n"), &out, &errOut); code != 0 {
		t.Fatalf("passwd: exit %d %s", code, errOut.String())
	}
	hash := strings.TrimSpace(out.String())
	if !password.IsHash(hash) || !password.NewVerifier().Verify(hash, "s3cret pass") {
		t.Fatalf("passwd printed %q", hash)
	}
	if strings.Contains(out.String()+errOut.String(), "s3cret") {
		t.Fatal("passwd echoed the password")
	}
}

// TestQueueListShowsWaitingRecipients: `queue list` names only the
// recipients still waiting, not those already delivered or failed.
func TestQueueListShowsWaitingRecipients(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	printQueue(&out, controlAnswer{Messages: []store.QueuedMessage{{
		ID: 7, From: "anna@contoso.test", Attempts: 2,
		Recipients: []store.QueuedRecipient{
			{Address: "done@fabrikam.example", State: store.RecipientDelivered},
			{Address: "wait@fabrikam.example", State: store.RecipientPending},
			{Address: "gone@fabrikam.example", State: store.RecipientFailed},
		},
	}}})
	if !strings.Contains(out.String(), "wait@fabrikam.example") || strings.Contains(out.String(), "done@") || strings.Contains(out.String(), "gone@") {
		t.Fatalf("queue list:\n%s", out.String())
	}
}

// TestCompactCommand: compact refuses a store a server has open, and
// shrinks it once the server stopped, keeping the mail.
func TestCompactCommand(t *testing.T) {
	t.Parallel()
	bboltOnlyTest(t, "compact rewrites the bbolt file; a PostgreSQL store is VACUUMed by the database")
	ts := startServer(t, "")
	for i := range 40 {
		body := strings.Repeat(fmt.Sprintf("line of message %d\n", i), 2500) // ~50 KB
		if err := ts.send("client@example.org", []string{"anna@contoso.test"}, message("client@example.org", "anna@contoso.test", fmt.Sprint("message ", i), body)); err != nil {
			t.Fatal(err)
		}
	}
	// Delete all but the last: the file keeps their pages, free.
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(goimap.SeqSet{{Start: 1, Stop: 39}}, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	var out, errOut bytes.Buffer
	if code := run([]string{"compact", "-config", ts.cfgPath}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "stop the server first") {
		t.Fatalf("compact of a running server's store: exit %d\n%s", code, errOut.String())
	}
	ts.stop()
	errOut.Reset()
	if code := run([]string{"compact", "-config", ts.cfgPath}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "MiB, now") {
		t.Fatalf("compact: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	ts.start()
	if n := ts.count("anna@contoso.test", "anna-secret", "INBOX"); n != 1 {
		t.Fatalf("anna has %d messages after compaction", n)
	}
}
