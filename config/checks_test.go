package config

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestInboundAndDNSDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("c.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Inbound
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if !in.SPF || !in.DKIM || !in.DMARC || !slices.Equal(in.TrustedNetworks, want) {
		t.Fatalf("inbound %+v", in)
	}
	if cfg.DNS.Resolver != "" || cfg.TLS.ACME != nil {
		t.Fatalf("dns %+v acme %+v", cfg.DNS, cfg.TLS.ACME)
	}
}

func TestInboundSettings(t *testing.T) {
	t.Parallel()
	src := strings.Replace(base, "[user.anna]", "[inbound]\nspf = false\ndmarc = false\ntrusted_networks = [\"192.0.2.0/24\", \"2001:db8::1\"]\n[user.anna]", 1)
	cfg, err := Parse("c.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Inbound
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128")}
	if in.SPF || !in.DKIM || in.DMARC || !slices.Equal(in.TrustedNetworks, want) {
		t.Fatalf("inbound %+v", in)
	}
	src = strings.Replace(base, "[user.anna]", "[inbound]\ntrusted_networks = []\n[user.anna]", 1)
	if cfg, err = Parse("c.toml", []byte(src)); err != nil || len(cfg.Inbound.TrustedNetworks) != 0 {
		t.Fatalf("empty trusted_networks: %v %+v", err, cfg)
	}
}

// TestOutboundResolverIsDNSResolver: the old key still works (SPEC §7).
func TestOutboundResolverIsDNSResolver(t *testing.T) {
	t.Parallel()
	src := strings.Replace(base, "[user.anna]", "[outbound]\nresolver = \"127.0.0.1:5353\"\n[user.anna]", 1)
	cfg, err := Parse("c.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DNS.Resolver != "127.0.0.1:5353" || cfg.Outbound.Resolver != "127.0.0.1:5353" {
		t.Fatalf("dns %+v outbound %+v", cfg.DNS, cfg.Outbound)
	}
	src = strings.Replace(base, "[user.anna]", "[dns]\nresolver = \"127.0.0.1:53\"\n[user.anna]", 1)
	if cfg, err = Parse("c.toml", []byte(src)); err != nil || cfg.Outbound.Resolver != "127.0.0.1:53" {
		t.Fatalf("dns.resolver: %v %+v", err, cfg)
	}
}

func TestChecksRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, tables, key, msg string }{
		{"bad resolver", "[dns]\nresolver = \"127.0.0.1\"\n", "dns.resolver", "host:port"},
		{"two resolvers", "[outbound]\nresolver = \"127.0.0.1:1\"\n[dns]\nresolver = \"127.0.0.1:2\"\n", "outbound.resolver", "differs"},
		{"bad network", "[inbound]\ntrusted_networks = [\"10.0.0.0/33\"]\n", "inbound.trusted_networks[0]", "not a network"},
		{"host bits", "[inbound]\ntrusted_networks = [\"10.0.0.1/8\"]\n", "inbound.trusted_networks[0]", "10.0.0.0/8"},
		{"acme without listener", "[listen]\nhttp = \":8080\"\n[tls.acme]\nemail = \"postmaster@contoso.test\"\n", "tls.acme", "listen.https"},
		{"acme and cert", "[listen]\nhttps = \":443\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n[tls.acme]\n", "tls.acme", "one or the other"},
		{"acme not https", "[listen]\nhttps = \":443\"\n[tls.acme]\ndirectory = \"http://acme.test/dir\"\n", "tls.acme.directory", "https://"},
		{"https without tls", "[listen]\nhttps = \":443\"\n", "listen.https", "[tls.acme]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("c.toml", []byte(strings.Replace(base, "[user.anna]", c.tables+"[user.anna]", 1)))
			var errs *Errors
			if !errors.As(err, &errs) || !slices.ContainsFunc(*errs, func(e Error) bool { return e.Key == c.key && strings.Contains(e.Msg, c.msg) }) {
				t.Fatalf("want %s: ...%s..., got %v", c.key, c.msg, err)
			}
		})
	}
}

func TestACME(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{"https = \"127.0.0.1:8443\"", "http = \":80\""} {
		src := strings.Replace(base, "[user.anna]", "[listen]\n"+listen+"\n[tls.acme]\nemail = \"postmaster@contoso.test\"\n[user.anna]", 1)
		cfg, err := Parse("c.toml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", listen, err)
		}
		a := cfg.TLS.ACME
		if a == nil || a.Directory != DefaultACMEDirectory || !slices.Equal(a.Hosts, []string{"mail.contoso.test"}) || a.Email != "postmaster@contoso.test" {
			t.Fatalf("acme %+v", a)
		}
		if cfg.Listen.IMAPS != ":993" || cfg.Listen.Submissions != ":465" {
			t.Fatalf("implicit TLS listeners not on by default with ACME: %+v", cfg.Listen)
		}
	}
}
