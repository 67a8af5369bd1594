package queue

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// maxTargets bounds the addresses tried for one domain in one round, so a
// domain with many dead MX hosts cannot hold a delivery slot for long.
const maxTargets = 10

// target is one address to try: host names the server (for TLS and logs),
// addr is what to dial.
type target struct {
	host string
	addr string
}

// targets lists where mail for domain goes, in order of preference. When
// there is nowhere to go it returns an outcome for every recipient instead:
// failed for a domain that does not exist or refuses mail (null MX), deferred
// when DNS is having trouble.
func (r *Runner) targets(ctx context.Context, domain string) ([]target, *outcome) {
	if r.opts.Smarthost != "" {
		host, _, _ := net.SplitHostPort(r.opts.Smarthost)
		return []target{{host: host, addr: r.opts.Smarthost}}, nil
	}
	if ip, ok := addressLiteral(domain); ok {
		return []target{{host: ip.String(), addr: r.hostPort(ip)}}, nil
	}
	hosts, implicit, o := r.mxHosts(ctx, domain)
	if o != nil {
		return nil, o
	}
	var out []target
	var lastErr error
	for _, h := range hosts {
		ips, err := r.dns.LookupNetIP(ctx, "ip", fqdn(h))
		if err != nil {
			lastErr = err
			continue
		}
		for _, ip := range ips {
			if len(out) < maxTargets {
				out = append(out, target{host: strings.TrimSuffix(h, "."), addr: r.hostPort(ip.Unmap())})
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if implicit && (lastErr == nil || isNotFound(lastErr)) {
		f := localOutcome(failed, "5.1.2", "domain %s has no MX and no address record", domain)
		return nil, &f
	}
	d := localOutcome(deferred, "4.4.4", "no usable address for the mail servers of %s: %v", domain, lastErr)
	return nil, &d
}

// mxHosts returns the MX host names of domain in preference order, or the
// domain itself (implicit) when it has no MX records (RFC 5321 section 5.1).
func (r *Runner) mxHosts(ctx context.Context, domain string) (hosts []string, implicit bool, o *outcome) {
	mxs, err := r.dns.LookupMX(ctx, fqdn(domain))
	if err != nil && len(mxs) == 0 {
		if isNotFound(err) {
			return []string{domain}, true, nil
		}
		d := localOutcome(deferred, "4.4.3", "MX lookup for %s: %v", domain, err)
		return nil, false, &d
	}
	// The resolver sorts MX records by preference (and shuffles equal ones).
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		f := localOutcome(failed, "5.1.10", "domain %s accepts no mail (null MX)", domain)
		return nil, false, &f
	}
	for _, mx := range mxs {
		if mx.Host != "." && mx.Host != "" {
			hosts = append(hosts, mx.Host)
		}
	}
	return hosts, false, nil
}

func (r *Runner) hostPort(ip netip.Addr) string {
	return net.JoinHostPort(ip.String(), strconv.Itoa(r.opts.Port))
}

// fqdn makes name absolute so the resolver does not try search domains.
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// addressLiteral parses a domain written as an address literal:
// "[192.0.2.1]" or "[IPv6:2001:db8::1]".
func addressLiteral(domain string) (netip.Addr, bool) {
	inner, ok := strings.CutPrefix(domain, "[")
	if !ok {
		return netip.Addr{}, false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok {
		return netip.Addr{}, false
	}
	if v6, ok := cutPrefixFold(inner, "ipv6:"); ok {
		ip, err := netip.ParseAddr(v6)
		return ip, err == nil && ip.Is6() && ip.Zone() == ""
	}
	ip, err := netip.ParseAddr(inner)
	return ip, err == nil && ip.Is4()
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
