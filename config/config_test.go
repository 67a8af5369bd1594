package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// hash is a bcrypt hash of "anna-secret".
const hash = "$2a$10$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe"

// base is the smallest valid file; tests append to it, so its last table
// is [user.anna].
const base = `hostname = "mail.contoso.test"
domains = ["contoso.test"]
[user.anna]
address = "anna@contoso.test"
password = "` + hash + `"
`

// bo adds a second user (lines 6-8 after base).
const bo = "[user.bo]\naddress = \"bo@contoso.test\"\npassword = \"" + hash + "\"\n"

func TestExampleLoads(t *testing.T) {
	t.Parallel()
	cfg, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "mail.contoso.test" || len(cfg.Users) != 3 || len(cfg.Shared) != 1 || len(cfg.Groups) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	if cfg.Listen != (Listen{SMTP: "127.0.0.1:2525", Submission: "127.0.0.1:2587", IMAP: "127.0.0.1:2143", HTTP: "127.0.0.1:2080"}) {
		t.Fatalf("listen %+v", cfg.Listen)
	}
	if cfg.TLS.Cert != "" || !cfg.TLS.AllowInsecureAuth || cfg.Limits.MessageSize != 25<<20 || cfg.Outbound.Smarthost != "" {
		t.Fatalf("tls %+v limits %+v outbound %+v", cfg.TLS, cfg.Limits, cfg.Outbound)
	}
	abs, _ := filepath.Abs("../data")
	if cfg.DataDir != abs {
		t.Fatalf("data_dir %q, want %q (beside the file)", cfg.DataDir, abs)
	}
	var keys []string
	for _, u := range cfg.Users {
		keys = append(keys, u.Key)
	}
	if strings.Join(keys, ",") != "anna,bo,carl" {
		t.Fatalf("users in order %v", keys)
	}
	anna := cfg.Users[0]
	if anna.Quota != 10*1000*1000*1000 || !anna.IMAP || !anna.SMTP || anna.Aliases[0] != "support@contoso.test" || len(anna.Contacts) != 1 {
		t.Fatalf("anna %+v", anna)
	}
	if ar := cfg.Users[1].AutoReply; ar == nil || ar.Enabled || ar.ExternalAudience != "contacts" || !ar.Start.Before(ar.End) {
		t.Fatalf("bo's auto_reply %+v", ar)
	}
	info := cfg.Shared[0]
	if info.Seen != "shared" || !info.SentCopy || info.Quota != 50*1000*1000*1000 || info.Grants["carl@contoso.test"][0] != "read" || info.IMAP {
		t.Fatalf("info %+v", info)
	}
	if g := cfg.Groups[0]; g.Address != "sales@contoso.test" || len(g.Members) != 3 || g.AllowExternalSenders {
		t.Fatalf("group %+v", g)
	}
}

// TestExampleCommentedTablesAreValid: the example doubles as the
// reference, so its commented-out settings must be valid once uncommented.
// Only the DKIM key, which no developer machine has, may be missing.
func TestExampleCommentedTablesAreValid(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`(?m)^# (\[|[a-z_]+ +=)`)
	src := setting.ReplaceAllString(string(data), "$1")
	if n := len(setting.FindAllString(string(data), -1)); n < 15 {
		t.Fatalf("only %d commented settings found", n)
	}
	_, err = Parse("example.toml", []byte(src))
	var errs *Errors
	if !errors.As(err, &errs) || len(*errs) != 1 || (*errs)[0].Key != `dkim."contoso.test".key` {
		t.Fatalf("uncommented example: %v; want only the missing DKIM key", err)
	}
	cfg, err := Parse("example.toml", []byte(strings.Replace(src, `key = "/etc/postkasse/dkim/contoso.test.pem"`, `key = "config.go"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	anna := cfg.Users[0]
	if cfg.Outbound.Smarthost == "" || anna.Forward == nil || len(anna.Connected) != 1 || len(cfg.DKIM) != 1 {
		t.Fatalf("uncommented settings not read: %+v %+v", cfg.Outbound, anna)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, "c.toml"), []byte(base+"[shared.info]\naddress = \"Info@Contoso.test\"\nmembers = [\"ANNA@contoso.test\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Listen{SMTP: ":25", Submission: ":587", IMAP: ":143"}
	if cfg.Listen != want {
		t.Errorf("listen %+v, want %+v", cfg.Listen, want)
	}
	if cfg.DataDir != filepath.Join(dir, "data") {
		t.Errorf("data_dir %q", cfg.DataDir)
	}
	if cfg.Limits != (Limits{MessageSize: 25 << 20, UserQuota: 50e9, SharedQuota: 50e9, RecipientsPerMessage: 1000,
		ConnectionsPerIP: 200, AuthFailures: 10, AuthFailuresPerIP: 100}) {
		t.Errorf("limits %+v", cfg.Limits)
	}
	if !slices.Equal(cfg.Inbound.TrustedNetworks, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}) {
		t.Errorf("trusted_networks %v", cfg.Inbound.TrustedNetworks)
	}
	o := cfg.Outbound
	if o.QueueLifetime != 120*time.Hour || o.RetryAfter != 5*time.Minute || o.SmarthostTLS != "may" || cfg.Postmaster != "" {
		t.Errorf("outbound %+v", o)
	}
	anna, info := cfg.Users[0], cfg.Shared[0]
	if !anna.IMAP || !anna.SMTP || anna.Quota != 50e9 || anna.Forward != nil || anna.AutoReply != nil {
		t.Errorf("anna %+v", anna)
	}
	if info.Address != "info@contoso.test" || info.Members[0] != "anna@contoso.test" || info.Seen != "shared" || !info.SentCopy || info.Quota != 50e9 {
		t.Errorf("info %+v", info)
	}
}

func TestLimitsAndTrustedNetworks(t *testing.T) {
	t.Parallel()
	src := strings.Replace(base, "[user.anna]", "[limits]\nconnections_per_ip = 5\nauth_failures = 3\nauth_failures_per_ip = 7\n"+
		"[inbound]\ntrusted_networks = [\"192.0.2.0/24\", \"2001:db8::1\", \"10.0.0.7\"]\n[user.anna]", 1)
	cfg, err := Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Limits
	if l.ConnectionsPerIP != 5 || l.AuthFailures != 3 || l.AuthFailuresPerIP != 7 {
		t.Errorf("limits %+v", l)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("10.0.0.7/32")}
	if !slices.Equal(cfg.Inbound.TrustedNetworks, want) {
		t.Errorf("trusted_networks %v, want %v", cfg.Inbound.TrustedNetworks, want)
	}
	none := strings.Replace(base, "[user.anna]", "[inbound]\ntrusted_networks = []\n[user.anna]", 1)
	if cfg, err := Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(none)); err != nil || len(cfg.Inbound.TrustedNetworks) != 0 {
		t.Errorf("an empty list trusts nobody: %v %v", cfg, err)
	}
}

func TestListenWithTLSDefaultsToImplicitPorts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := strings.Replace(base, "[user.anna]", "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nallow_insecure_auth = false\n[listen]\nimap = \"\"\n[user.anna]", 1)
	cfg, err := Parse(filepath.Join(dir, "c.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != (Listen{SMTP: ":25", Submission: ":587", Submissions: ":465", IMAPS: ":993"}) {
		t.Errorf("listen %+v", cfg.Listen)
	}
	if cfg.TLS != (TLS{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}) {
		t.Errorf("tls %+v (paths are relative to the file)", cfg.TLS)
	}
}

func TestLocalDateTimeIsServerTime(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("c.toml", []byte(base+"[user.anna.auto_reply]\nstart = 2026-07-01T08:00:00\nend = 2026-12-24\n"))
	if err != nil {
		t.Fatal(err)
	}
	ar := cfg.Users[0].AutoReply
	if want := time.Date(2026, 7, 1, 8, 0, 0, 0, time.Local); !ar.Start.Equal(want) {
		t.Errorf("start %v, want %v", ar.Start, want)
	}
	if want := time.Date(2026, 12, 24, 0, 0, 0, 0, time.Local); !ar.End.Equal(want) {
		t.Errorf("end %v, want %v", ar.End, want)
	}
	if ar.ExternalAudience != "none" {
		t.Errorf("audience %q without an external text", ar.ExternalAudience)
	}
}

func TestAllErrorsReportedTogether(t *testing.T) {
	t.Parallel()
	_, err := Parse("c.toml", []byte(base+"quota = \"x\"\napps = [\"pop3\"]\n[group.g]\naddress = \"g@elsewhere.example\"\n"))
	var errs *Errors
	if !errors.As(err, &errs) || len(*errs) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "c.toml:6: ") || !strings.HasPrefix(lines[2], "c.toml:9: ") {
		t.Fatalf("want one line each, in file order:\n%v", err)
	}
}

// Users get all three apps unless apps says otherwise; HTTPS needs TLS.
func TestHTTPListenersAndDAVApp(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("c.toml", []byte(base+"[user.bo]\naddress = \"bo@contoso.test\"\npassword = \""+hash+"\"\napps = [\"imap\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Users[0]; !a.IMAP || !a.SMTP || !a.DAV {
		t.Errorf("anna's default apps: %+v", a)
	}
	if b := cfg.Users[1]; !b.IMAP || b.SMTP || b.DAV {
		t.Errorf("bo's apps: %+v", b)
	}
	if cfg.Listen.HTTP != "" || cfg.Listen.HTTPS != "" {
		t.Errorf("HTTP listeners on without being named: %+v", cfg.Listen)
	}
	_, err = Parse("c.toml", []byte(strings.Replace(base, "[user.anna]", "[listen]\nhttps = \":443\"\n[user.anna]", 1)))
	if err == nil || !strings.Contains(err.Error(), "listen.https") {
		t.Errorf("https without [tls]: %v", err)
	}
}
