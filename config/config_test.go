package config

import (
	"errors"
	"strings"
	"testing"
)

func TestExampleLoads(t *testing.T) {
	t.Parallel()
	cfg, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "mail.contoso.test" || len(cfg.Users) != 3 || len(cfg.Shared) != 1 || len(cfg.Groups) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	if cfg.Listen.SMTP != "127.0.0.1:2525" || cfg.Listen.IMAPS != "" || cfg.Limits.MessageSize != 25<<20 {
		t.Fatalf("listen %+v limits %+v", cfg.Listen, cfg.Limits)
	}
	anna := cfg.Users[0]
	if anna.Key != "anna" || anna.Quota != 10*1000*1000*1000 || !anna.IMAP || anna.Aliases[0] != "support@contoso.test" {
		t.Fatalf("anna %+v", anna)
	}
	info := cfg.Shared[0]
	if info.Seen != "shared" || !info.SentCopy || info.Quota != 50*1000*1000*1000 || info.Grants["carl@contoso.test"][0] != "read" {
		t.Fatalf("info %+v", info)
	}
}

const base = `hostname = "mail.contoso.test"
domains = ["contoso.test"]
[user.anna]
address = "anna@contoso.test"
password = "$2a$10$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe"
`

func TestErrorsNameFileLineAndKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, extra, want string
		line              int
	}{
		{"unknown key", "colour = \"red\"\n", `user.anna.colour: unknown key`, 6},
		{"duplicate address", "[user.bo]\naddress = \"bo@contoso.test\"\npassword = \"$2a$10$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe\"\naliases = [\"x@contoso.test\", \"anna@contoso.test\"]\n",
			`user.bo.aliases[1]: "anna@contoso.test" is already the address of user.anna`, 9},
		{"outside domains", "aliases = [\"anna@elsewhere.example\"]\n", `is outside the domains`, 6},
		{"member resolves to nothing", "[shared.info]\naddress = \"info@contoso.test\"\nmembers = [\"ghost@contoso.test\"]\n", `shared.info.members[0]: "ghost@contoso.test" is not a user or group`, 8},
		{"group cycle", "[group.a]\naddress = \"a@contoso.test\"\nmembers = [\"b@contoso.test\"]\n[group.b]\naddress = \"b@contoso.test\"\nmembers = [\"a@contoso.test\"]\n", `groups form a cycle`, 8},
		{"malformed size", "quota = \"lots\"\n", `user.anna.quota: "lots" is not a size`, 6},
		{"malformed time", "[user.anna.auto_reply]\nenabled = true\ninternal = \"x\"\nstart = \"next tuesday\"\n", `user.anna.auto_reply.start: "next tuesday" is not an RFC 3339 time`, 9},
		{"end before start", "[user.anna.auto_reply]\nstart = 2027-01-02T00:00:00Z\nend = 2026-12-20T00:00:00Z\n", `ends (2026-12-20T00:00:00Z) before it starts`, 8},
		{"bad audience", "[user.anna.auto_reply]\nexternal_audience = \"friends\"\n", `"friends" is not "none", "contacts" or "all"`, 7},
		{"plain password", "[user.bo]\naddress = \"bo@contoso.test\"\npassword = \"hunter2\"\n", `user.bo.password: is not a password hash`, 8},
		{"bad app", "apps = [\"pop3\"]\n", `user.anna.apps[0]: "pop3" is not "imap" or "smtp"`, 6},
		{"bad right", "[shared.info]\naddress = \"info@contoso.test\"\n[shared.info.grants]\n\"anna@contoso.test\" = [\"admin\"]\n", `"admin" is not a right`, 9},
		{"bad listen", "[listen]\nsmtp = \"nonsense\"\n", `listen.smtp: "nonsense" is not host:port`, 7},
		{"shared password", "[shared.info]\naddress = \"info@contoso.test\"\npassword = \"x\"\n", `shared.info.password: a shared mailbox has no password`, 8},
		{"syntax", "address = \n", `config.toml:6`, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("config.toml", []byte(base+tc.extra))
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want *Errors", err)
			}
			found := false
			for _, e := range *errs {
				if strings.Contains(e.Error(), tc.want) {
					found = true
					if e.Line != tc.line {
						t.Errorf("%q at line %d, want %d", e.Error(), e.Line, tc.line)
					}
				}
			}
			if !found {
				t.Fatalf("errors:\n%v\nwant one containing %q", err, tc.want)
			}
		})
	}
}

func TestAllErrorsReportedTogether(t *testing.T) {
	t.Parallel()
	_, err := Parse("c.toml", []byte(base+"quota = \"x\"\napps = [\"pop3\"]\n"))
	var errs *Errors
	if !errors.As(err, &errs) || len(*errs) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
}

func TestSizes(t *testing.T) {
	t.Parallel()
	for in, want := range map[any]int64{"25MiB": 25 << 20, "50GB": 50e9, "10 GB": 10e9, "512KiB": 512 << 10, "1000": 1000, int64(42): 42, "1.5KB": 1500} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%v) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []any{"", "MiB", "-5MB", "5 parsecs", 3.5} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%v) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(base + "[group.g]\naddress = \"g@contoso.test\"\nmembers = [\"anna@contoso.test\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}
