package config

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// listen.proxy_protocol takes networks and single addresses, as
// trusted_networks does, refuses anything else by key, and defaults to
// no balancer at all.
func TestProxyProtocolNetworks(t *testing.T) {
	t.Parallel()
	cfg, err := Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.ProxyProtocol) != 0 {
		t.Errorf("proxy_protocol by default: %v, want none", cfg.ProxyProtocol)
	}
	src := strings.Replace(base, "[user.anna]", "[listen]\nproxy_protocol = [\"10.1.0.0/16\", \"192.0.2.9\", \"2001:db8::5\"]\n[user.anna]", 1)
	cfg, err = Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.0.2.9/32"), netip.MustParsePrefix("2001:db8::5/128")}
	if !slices.Equal(cfg.ProxyProtocol, want) {
		t.Errorf("proxy_protocol %v, want %v", cfg.ProxyProtocol, want)
	}
	for _, bad := range []string{"lb.contoso.test", "10.1.0.1/16", "fe80::1%eth0"} {
		src := strings.Replace(base, "[user.anna]", "[listen]\nproxy_protocol = [\"127.0.0.1\", \""+bad+"\"]\n[user.anna]", 1)
		_, err := Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(src))
		if err == nil || !strings.Contains(err.Error(), "listen.proxy_protocol[1]") {
			t.Errorf("proxy_protocol %q: %v, want an error naming listen.proxy_protocol[1]", bad, err)
		}
	}
}
