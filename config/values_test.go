package config

import (
	"os"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want int64
	}{
		{"25MiB", 25 << 20}, {"50GB", 50e9}, {"10 GB", 10e9}, {"512KiB", 512 << 10}, {"1000", 1000},
		{int64(42), 42}, {"1.5KB", 1500}, {"2tib", 2 << 40}, {"0", 0}, {" 7 b ", 7}, {"1k", 1000},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%v) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []any{"", "MiB", "-5MB", "5 parsecs", "1e5", "1.2.3GB", "99999999999TB", 3.5, int64(-1), true} {
		if n, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%v) = %d, want an error", bad, n)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"5m": 5 * time.Minute, "120h": 120 * time.Hour, "1h30m": 90 * time.Minute} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []any{"", "5", "5 minutes", "-5m", "0s", int64(300)} {
		if d, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%v) = %v, want an error", bad, d)
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	for _, in := range []any{"2026-12-20T00:00:00Z", "2026-12-20T01:00:00+01:00", want} {
		if got, err := parseTime(in); err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%v) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []any{"2026-12-20", "tomorrow", int64(1)} {
		if got, err := parseTime(bad); err == nil {
			t.Errorf("parseTime(%v) = %v, want an error", bad, got)
		}
	}
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"anna@contoso.test": true, "anna+tag@contoso.test": true, "a.b-c@sub.contoso.test": true,
		"anna": false, "@contoso.test": false, "anna@": false, "Anna <anna@contoso.test>": false,
		"anna@contoso..test": false, "a@b@contoso.test": false, "anna@contoso.test.": false,
		"\"a b\"@contoso.test": false, "anna@con_toso.test": false,
	} {
		if got := validAddress(addr); got != want {
			t.Errorf("validAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestLocator(t *testing.T) {
	t.Parallel()
	src := `top = 1
[user.anna]
s = """
[not.a.table]
x = 1
"""
aliases = [
  "a@x", # comment, with a comma
  'b@x',
  [1, 2], { k = "v" },
]
forward.to = ["c@x"]
[dkim."contoso.test"]
key = "k"
[[user.anna.connected]]
host = "h"
[[user.anna.connected]]
host = "h"
`
	l := newLocator(src)
	for path, want := range map[string]int{
		"top": 1, "user.anna": 2, "user.anna.s": 3, "not.a.table": 0, "user.anna.x": 2,
		"user.anna.aliases": 7, "user.anna.aliases[0]": 8, "user.anna.aliases[1]": 9, "user.anna.aliases[2]": 10,
		"user.anna.aliases[3]": 10, "user.anna.aliases[4]": 7, "user.anna.forward.to[0]": 12, "user.anna.forward": 12,
		`dkim."contoso.test".key`: 14, `dkim."contoso.test".selector`: 13,
		"user.anna.connected[0].host": 16, "user.anna.connected[1].host": 18, "user.anna.connected[1].folder": 17,
	} {
		if got := l.line(path); got != want {
			t.Errorf("line(%q) = %d, want %d", path, got, want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"25MiB", "10 GB", "1.5KB", "", "-1", "1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseSize(s); err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

// FuzzParse checks that no file makes Parse panic, and that it returns
// either a configuration or an error.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(base + bo + "[group.g]\naddress = \"g@contoso.test\"\nmembers = [\n\"anna@contoso.test\",\n\"bo@contoso.test\"]\n"))
	f.Add([]byte(base + "[shared.info]\naddress = \"info@contoso.test\"\nmembers = [\"anna@contoso.test\"]\n[shared.info.grants]\n\"anna@contoso.test\" = [\"read\"]\n"))
	f.Add([]byte(base + "[user.anna.auto_reply]\nstart = 2026-12-20\nend = 2027-01-02T00:00:00Z\n[[user.anna.connected]]\nhost = \"h:1\"\n"))
	if example, err := os.ReadFile("../config.example.toml"); err == nil {
		f.Add(example)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if (err == nil) == (cfg == nil) {
			t.Fatalf("Parse returned %v and %v", cfg, err)
		}
	})
}
