package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// defaultTrustedNetworks are the networks whose mail is not checked when
// [inbound] does not name any: the server's own machine.
var defaultTrustedNetworks = []string{"127.0.0.0/8", "::1/128"}

// dns reads [dns]. outbound.resolver is the key's old name (SPEC §7): it
// counts when dns.resolver is not set, and the two may not disagree.
func (v *validator) dns(raw *rawConfig, cfg *Config) {
	addr := strings.TrimSpace(raw.DNS.Resolver)
	old := strings.TrimSpace(raw.Outbound.Resolver)
	switch {
	case addr != "" && !validHostPort(addr):
		v.errorf("dns.resolver", "%q is not host:port such as \"127.0.0.1:53\"", addr)
	case addr == "":
		addr = old
	case old != "" && old != addr:
		v.errorf("outbound.resolver", "%q differs from dns.resolver %q: keep only dns.resolver", old, addr)
	}
	cfg.DNS.Resolver = addr
	cfg.Outbound.Resolver = addr
}

// inbound reads [inbound]: every check on unless switched off, loopback
// trusted unless trusted_networks says otherwise.
func (v *validator) inbound(raw *rawConfig, cfg *Config) {
	in := raw.Inbound
	on := func(p *bool) bool { return p == nil || *p }
	cfg.Inbound = Inbound{SPF: on(in.SPF), DKIM: on(in.DKIM), DMARC: on(in.DMARC)}
	nets := defaultTrustedNetworks
	if in.TrustedNetworks != nil {
		nets = *in.TrustedNetworks
	}
	cfg.Inbound.TrustedNetworks = []netip.Prefix{}
	for i, s := range nets {
		p, err := parseNetwork(s)
		if err != nil {
			v.errorf(fmt.Sprintf("inbound.trusted_networks[%d]", i), "%v", err)
			continue
		}
		cfg.Inbound.TrustedNetworks = append(cfg.Inbound.TrustedNetworks, p)
	}
}

// acme reads [tls.acme]. It excludes cert/key, and needs a listener an
// ACME server can reach for a challenge: https (TLS-ALPN-01) or http on
// port 80 (HTTP-01).
func (v *validator) acme(raw *rawConfig, cfg *Config) {
	r := raw.TLS.ACME
	if r == nil {
		return
	}
	a := &ACME{Directory: strings.TrimSpace(r.Directory), Email: strings.TrimSpace(r.Email)}
	if a.Directory == "" {
		a.Directory = DefaultACMEDirectory
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.errorf("tls.acme.directory", "%q is not an https:// URL", r.Directory)
	}
	if a.Email != "" && !validAddress(strings.ToLower(a.Email)) {
		v.errorf("tls.acme.email", "%q is not an address such as \"postmaster@contoso.test\"", r.Email)
	}
	for i, h := range r.Hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if !validDomain(h) {
			v.errorf(fmt.Sprintf("tls.acme.hosts[%d]", i), "%q is not a host name", h)
		}
		a.Hosts = append(a.Hosts, h)
	}
	if len(a.Hosts) == 0 {
		a.Hosts = []string{cfg.Hostname}
	}
	if raw.TLS.Cert != "" || raw.TLS.Key != "" {
		v.errorf("tls.acme", "takes the place of tls.cert and tls.key: set one or the other")
	}
	if cfg.Listen.HTTPS == "" && !onPort80(cfg.Listen.HTTP) {
		v.errorf("tls.acme", "needs a listener the ACME server can reach: listen.https (TLS-ALPN-01) or listen.http on port 80 (HTTP-01)")
	}
	cfg.TLS.ACME = a
}

func onPort80(addr string) bool {
	return addr != "" && strings.HasSuffix(addr, ":80")
}
