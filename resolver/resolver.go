// Package resolver is the server's one DNS client: every lookup (MX for the
// outbound queue, SPF, DKIM and DMARC for inbound checks) goes through one
// Resolver, so `[dns] resolver` points all of them at one server, each
// lookup is bounded in time, and answers are cached for their TTL.
//
// Errors are *net.DNSError values, never wrapped, because the libraries
// that call a resolver (blitiri.com.ar/go/spf, go-msgauth) type-assert
// them: IsNotFound means the name or the records do not exist (NXDOMAIN,
// or NOERROR without records of the type); Temporary() means the answer
// could not be had (timeout, SERVFAIL, REFUSED, network error) and asking
// again later may help. IsNotFound and IsTemporary say which.
//
// It imports no other postkasse package.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout    = 20 * time.Second // SPEC §11: no answer within 20 s is a failure
	DefaultCacheSize  = 4096
	defaultTryTimeout = 3 * time.Second
	maxCNAMEs         = 8
	maxTTL            = time.Hour
	negativeTTL       = time.Minute // for a "no such record" without an SOA
)

// Options configure a Resolver.
type Options struct {
	// Server is the DNS server, "host:port"; "" uses the name servers of
	// /etc/resolv.conf (or 127.0.0.1:53 without one), and for addresses
	// /etc/hosts first, as the system's resolver does.
	Server string
	// Timeout bounds one lookup, retries included; 0 = DefaultTimeout.
	Timeout time.Duration
	// CacheSize bounds the cached answers; 0 = DefaultCacheSize.
	CacheSize int
	// Now is the clock of the cache; nil = time.Now.
	Now func() time.Time
}

// Resolver asks DNS servers and caches their answers. It is safe for
// concurrent use. Its methods match net.Resolver's, so it can stand in for
// one where an interface asks for those methods.
type Resolver struct {
	servers []string
	hosts   map[string][]netip.Addr // /etc/hosts, in system mode
	timeout time.Duration
	now     func() time.Time
	cache   *cache
	udp     *dns.Client
	tcp     *dns.Client
}

// New returns a Resolver. It fails only on a malformed Server.
func New(opts Options) (*Resolver, error) {
	servers := []string{opts.Server}
	var hosts map[string][]netip.Addr
	if opts.Server == "" {
		servers, hosts = systemServers(), readHosts("/etc/hosts")
	} else if _, _, err := net.SplitHostPort(opts.Server); err != nil {
		return nil, fmt.Errorf("resolver %q: %w", opts.Server, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	try := min(defaultTryTimeout, opts.Timeout)
	return &Resolver{
		servers: servers,
		hosts:   hosts,
		timeout: opts.Timeout,
		now:     opts.Now,
		cache:   newCache(opts.CacheSize),
		udp:     &dns.Client{Net: "udp", Timeout: try, UDPSize: dns.DefaultMsgSize},
		tcp:     &dns.Client{Net: "tcp", Timeout: try},
	}, nil
}

// systemServers reads the name servers of /etc/resolv.conf.
func systemServers() []string {
	conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(conf.Servers) == 0 {
		return []string{"127.0.0.1:53"}
	}
	out := make([]string, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		out = append(out, net.JoinHostPort(s, conf.Port))
	}
	return out
}

// Servers returns the DNS servers asked, in order.
func (r *Resolver) Servers() []string { return append([]string(nil), r.servers...) }

// IsNotFound reports whether err says the name or its records do not exist.
func IsNotFound(err error) bool {
	var d *net.DNSError
	return errors.As(err, &d) && d.IsNotFound
}

// IsTemporary reports whether err is a failure to get an answer (timeout,
// SERVFAIL, network trouble), as opposed to an answer that says "none".
func IsTemporary(err error) bool {
	var d *net.DNSError
	return errors.As(err, &d) && (d.IsTemporary || d.IsTimeout)
}

// LookupTXT returns the TXT records of name, each record's strings joined
// (as net.LookupTXT does).
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

// LookupMX returns the MX records of name, by preference (lowest first).
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		if mx, ok := rr.(*dns.MX); ok {
			out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	sortMX(out)
	return out, nil
}

// LookupNetIP returns the addresses of host; network is "ip", "ip4" or
// "ip6". An address literal is returned as it is, and "localhost" is the
// loopback address (RFC 6761), without asking DNS.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return localhost(network), nil
	}
	if ips := r.fromHosts(network, host); len(ips) > 0 {
		return ips, nil
	}
	var types []uint16
	switch network {
	case "ip":
		types = []uint16{dns.TypeA, dns.TypeAAAA}
	case "ip4":
		types = []uint16{dns.TypeA}
	case "ip6":
		types = []uint16{dns.TypeAAAA}
	default:
		return nil, &net.DNSError{Err: "unknown network " + network, Name: host}
	}
	var out []netip.Addr
	var firstErr error
	for _, t := range types {
		rrs, err := r.lookup(ctx, host, t)
		if err != nil {
			if firstErr == nil || IsNotFound(firstErr) {
				firstErr = err
			}
			continue
		}
		out = appendAddrs(out, rrs)
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = notFound(host, "")
		}
		return nil, firstErr
	}
	return out, nil
}

// LookupIPAddr is LookupNetIP(ctx, "ip", host) in net.IPAddr form.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]net.IPAddr, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: ip.AsSlice(), Zone: ip.Zone()})
	}
	return out, nil
}

// LookupAddr returns the names of an address (PTR records).
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	name, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: addr}
	}
	rrs, err := r.lookup(ctx, name, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if ptr, ok := rr.(*dns.PTR); ok {
			out = append(out, ptr.Ptr)
		}
	}
	return out, nil
}

// fromHosts returns the addresses /etc/hosts gives host (system mode).
func (r *Resolver) fromHosts(network, host string) []netip.Addr {
	var out []netip.Addr
	for _, ip := range r.hosts[strings.ToLower(strings.TrimSuffix(host, "."))] {
		if network == "ip" || (network == "ip4") == ip.Is4() {
			out = append(out, ip)
		}
	}
	return out
}

func localhost(network string) []netip.Addr {
	switch network {
	case "ip4":
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	case "ip6":
		return []netip.Addr{netip.IPv6Loopback()}
	}
	return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
}

func appendAddrs(out []netip.Addr, rrs []dns.RR) []netip.Addr {
	for _, rr := range rrs {
		var ip net.IP
		switch a := rr.(type) {
		case *dns.A:
			ip = a.A
		case *dns.AAAA:
			ip = a.AAAA
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, addr.Unmap())
		}
	}
	return out
}
