package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// parseSize reads "25MiB", "50GB", "10 GB", "512KiB" or a plain number of
// bytes (string or integer).
func parseSize(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, fmt.Errorf("size %d is negative", x)
		}
		return x, nil
	case string:
		return parseSizeString(x)
	}
	return 0, fmt.Errorf("a size must be a string such as \"25MiB\" or a number of bytes, not %T", v)
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1000, "kb": 1000, "m": 1000 * 1000, "mb": 1000 * 1000,
	"g": 1000 * 1000 * 1000, "gb": 1000 * 1000 * 1000, "t": 1000 * 1000 * 1000 * 1000, "tb": 1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

func parseSizeString(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a size (use e.g. \"25MiB\", \"50GB\" or a number of bytes)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (use e.g. \"25MiB\", \"50GB\" or a number of bytes)", s)
	}
	return int64(f * float64(mult)), nil
}

// parseDuration reads Go duration syntax ("5m", "120h").
func parseDuration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("a duration must be a string such as \"5m\" or \"120h\", not %T", v)
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (use e.g. \"5m\" or \"120h\")", s)
	}
	return d, nil
}

// parseTime reads a TOML date-time or an RFC 3339 string. A TOML local
// date-time (no offset) or local date (midnight) is taken in the server's
// time zone, with its daylight saving rules, which is what someone writing
// "away from 2026-12-20" means.
func parseTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		switch x.Location().String() {
		case "datetime-local", "date-local":
			return time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.Local), nil
		case "time-local":
			return time.Time{}, fmt.Errorf("%s has no date: use a date-time such as 2026-12-20T00:00:00Z", x.Format("15:04:05"))
		}
		return x, nil
	case string:
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(x))
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2026-12-20T00:00:00Z", x)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("a time must be an RFC 3339 date-time such as 2026-12-20T00:00:00Z, not %T", v)
}

// parseNetwork reads a network in CIDR notation ("192.0.2.0/24",
// "2001:db8::/32") or a single address, which means itself alone. Host
// bits under the mask are refused: "10.1.2.3/8" is more likely a typo than
// a way to write 10.0.0.0/8.
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a network such as \"192.0.2.0/24\" or an address", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a network such as \"192.0.2.0/24\" or an address", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its mask: did you mean %q?", s, p.Masked().String())
	}
	return p, nil
}

// absolute resolves a path of the file against the file's directory.
func absolute(base, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(base, path)
}

// validHostPort accepts "host:port" and ":port" with a numeric port.
func validHostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// validAddress accepts a bare lower-case addr-spec with a DNS domain; no
// display names, comments or quoted local parts.
func validAddress(addr string) bool {
	if strings.ContainsAny(addr, " <>\"(),;:\\[]") {
		return false
	}
	a, err := mail.ParseAddress(addr)
	return err == nil && a.Address == addr && strings.Count(addr, "@") == 1 && validDomain(domainOf(addr))
}

// validDomain accepts a lower-case DNS name.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
