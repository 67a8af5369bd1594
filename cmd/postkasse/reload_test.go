package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"postkasse.dev/postkasse/config"
)

func TestReloadChangesMembersAndAliases(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sharedConfig)
	dora := ts.login("dora@contoso.test", "carl-secret", nil)
	if list, _ := dora.List("", "Shared/*", nil).Collect(); len(list) != 0 {
		t.Fatalf("dora sees %v before she is a member", list)
	}
	bo := ts.login("bo@contoso.test", "bo-secret", nil)
	if _, err := bo.Select(infoInbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}

	next := strings.Replace(baseConfig+sharedConfig, `members = ["anna@contoso.test", "bo@contoso.test"]`, `members = ["anna@contoso.test", "dora@contoso.test"]`, 1)
	next = strings.Replace(next, `aliases = ["kontakt@contoso.test"]`, `aliases = ["kontakt@contoso.test", "hello@contoso.test"]`, 1)
	ts.writeConfig(next)
	if err := ts.srv.reload(ts.cfgPath); err != nil {
		t.Fatal(err)
	}
	if list, _ := dora.List("", "Shared/*", nil).Collect(); len(list) == 0 {
		t.Fatal("a new member does not see the shared mailbox at her next LIST")
	}
	if err := ts.send("client@example.org", []string{"hello@contoso.test"}, message("client@example.org", "hello@contoso.test", "new alias", "x")); err != nil {
		t.Fatalf("new alias: %v", err)
	}
	// bo was removed while he had the folder selected: he is not left reading.
	if _, err := bo.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{Flags: true}).Collect(); err == nil {
		select {
		case <-bo.Closed():
		case <-time.After(2 * time.Second):
			t.Fatal("removed member can still read the shared mailbox")
		}
	}
	if sel, err := dora.Select(infoInbox, nil).Wait(); err != nil || sel.NumMessages != 1 {
		t.Fatalf("dora selects info: %+v %v", sel, err)
	}
}

// TestInvalidReloadKeepsServing sends SIGHUP with a broken file to a real
// server process while mail is being delivered: nothing is lost and the
// old configuration stays in force.
func TestInvalidReloadKeepsServing(t *testing.T) {
	t.Parallel()
	cfgPath, smtpAddr, imapAddr, good := childConfig(t)
	dir := filepath.Dir(cfgPath)
	child := startChild(t, cfgPath, smtpAddr)

	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, failed := 0, 0
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				err := sendMail(smtpAddr, nil, "zoe@example.org", []string{"support@contoso.test"}, message("zoe@example.org", "support@contoso.test", fmt.Sprintf("r-%d-%d", g, i), "x"))
				mu.Lock()
				if err != nil {
					failed++
				} else {
					sent++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	os.WriteFile(cfgPath, []byte(good+"\n[user.broken]\naddress = \"nowhere\"\n"), 0o600)
	child.Process.Signal(syscall.SIGHUP)
	wg.Wait()
	if failed != 0 {
		t.Fatalf("%d deliveries failed around the reload", failed)
	}
	// The old directory still serves the alias, and the process is alive.
	if err := sendMail(smtpAddr, nil, "zoe@example.org", []string{"support@contoso.test"}, message("zoe@example.org", "support@contoso.test", "after", "x")); err != nil {
		t.Fatalf("after the refused reload: %v", err)
	}
	ts := &testServer{t: t, imap: imapAddr}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || int(sel.NumMessages) != sent+1 {
		t.Fatalf("INBOX has %+v, want %d (%v)", sel, sent+1, err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "child-*.log"))
	data, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(data), "reload refused") || !strings.Contains(string(data), "user.broken") {
		t.Fatalf("the refused reload was not logged with its errors:\n%s", data)
	}
}

// TestRestartOnlySettings: a reload names the changed settings that only
// a restart applies, and nothing for what it applies itself.
func TestRestartOnlySettings(t *testing.T) {
	t.Parallel()
	base := func() *config.Config {
		return &config.Config{
			Hostname: "mail.contoso.test", DataDir: "/var/lib/postkasse", Domains: []string{"contoso.test"},
			Listen: config.Listen{SMTP: ":25"}, Limits: config.Limits{MessageSize: 1 << 20, UserQuota: 1 << 30},
		}
	}
	for _, tc := range []struct {
		change func(c *config.Config)
		want   []string
	}{
		{func(c *config.Config) {}, nil},
		{func(c *config.Config) { c.Limits.UserQuota = 2 << 30 }, nil},                   // quotas are live
		{func(c *config.Config) { c.Domains = append(c.Domains, "fabrikam.test") }, nil}, // so are added domains
		{func(c *config.Config) { c.Listen.SMTP = ":2525" }, []string{"listen"}},
		{func(c *config.Config) { c.Limits.MessageSize = 2 << 20 }, []string{"limits.message_size"}},
		{func(c *config.Config) {
			c.Hostname = "mx.contoso.test"
			c.DKIM = []config.DKIM{{Domain: "contoso.test", Selector: "s", Key: "/k.pem"}}
		}, []string{"hostname", "dkim"}},
		{func(c *config.Config) { c.TLS.Cert, c.TLS.Key = "/c.pem", "/k.pem" }, []string{"tls (a certificate added or removed)"}},
	} {
		cfg := base()
		tc.change(cfg)
		if got := restartOnly(base(), cfg); !slices.Equal(got, tc.want) {
			t.Errorf("restartOnly = %q, want %q", got, tc.want)
		}
	}
}
