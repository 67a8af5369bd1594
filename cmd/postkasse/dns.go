package main

import (
	"crypto"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/dkim"
)

// dnsTTL is the TTL of the printed records: an hour, short enough to
// correct a mistake the same day.
const dnsTTL = 3600

// cmdDNS prints, per domain, the records to publish (SPEC §10) as
// zone-file lines.
func cmdDNS(args []string, stdout, stderr io.Writer) int {
	c := newCommand("dns", "configuration file", stderr)
	cfg, code := c.load(args, func(n int) bool { return n <= 1 }, "usage: postkasse dns [-config FILE] [DOMAIN]")
	if cfg == nil {
		return code
	}
	domains := cfg.Domains
	if c.fs.NArg() == 1 {
		want := strings.ToLower(strings.TrimSuffix(c.fs.Arg(0), "."))
		domains = nil
		for _, d := range cfg.Domains {
			if d == want {
				domains = []string{d}
			}
		}
		if domains == nil {
			fmt.Fprintf(stderr, "postkasse dns: %s is not one of the domains of %s\n", want, cfg.File)
			return 1
		}
	}
	fmt.Fprintf(stdout, "; Records for %s. The host %s needs A/AAAA records (and a PTR) of this server.\n", cfg.File, cfg.Hostname)
	for _, d := range domains {
		rrs, err := zoneRecords(cfg, d)
		if err != nil {
			fmt.Fprintln(stderr, "postkasse dns:", err)
			return 1
		}
		fmt.Fprintf(stdout, "\n; %s\n", d)
		for _, rr := range rrs {
			fmt.Fprintln(stdout, rr.String())
		}
	}
	return 0
}

// zoneRecords are domain's records: MX, SPF, DKIM, DMARC, the SRV records
// of RFC 6186 and RFC 6764, and the names Thunderbird and Outlook look up.
func zoneRecords(cfg *config.Config, domain string) ([]dns.RR, error) {
	zone := dns.Fqdn(domain)
	host := dns.Fqdn(cfg.Hostname)
	hdr := func(name string, typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: dnsTTL}
	}
	txt := func(name, value string) dns.RR {
		return &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: splitTXT(value)}
	}
	rrs := []dns.RR{
		&dns.MX{Hdr: hdr(zone, dns.TypeMX), Preference: 10, Mx: host},
		txt(zone, "v=spf1 mx -all"),
	}
	for _, k := range cfg.DKIM {
		if k.Domain != domain {
			continue
		}
		signer, err := dkim.LoadKey(k.Key)
		if err != nil {
			return nil, err
		}
		rr, err := dkimRecord(k.Selector, domain, signer.Public())
		if err != nil {
			return nil, err
		}
		rrs = append(rrs, rr)
	}
	rrs = append(rrs, txt("_dmarc."+zone, "v=DMARC1; p=quarantine; rua=mailto:postmaster@"+domain))
	srv := func(service, addr string) dns.RR {
		rr := &dns.SRV{Hdr: hdr(service+"._tcp."+zone, dns.TypeSRV), Priority: 0, Weight: 1, Target: host}
		if rr.Port = listenPort(addr); rr.Port == 0 {
			// RFC 6186 §3.4: target "." says the service is not offered.
			rr.Weight, rr.Target = 0, "."
		}
		return rr
	}
	rrs = append(rrs,
		srv("_imaps", cfg.Listen.IMAPS), srv("_imap", cfg.Listen.IMAP),
		srv("_submissions", cfg.Listen.Submissions), srv("_submission", cfg.Listen.Submission),
		srv("_carddavs", cfg.Listen.HTTPS),
	)
	if cfg.Listen.HTTPS != "" {
		// RFC 6764 §4: where the service lives on that host.
		rrs = append(rrs, txt("_carddavs._tcp."+zone, "path=/.well-known/carddav"))
	}
	rrs = append(rrs,
		&dns.CNAME{Hdr: hdr("autoconfig."+zone, dns.TypeCNAME), Target: host},
		&dns.CNAME{Hdr: hdr("autodiscover."+zone, dns.TypeCNAME), Target: host},
		srv("_autodiscover", cfg.Listen.HTTPS),
	)
	return rrs, nil
}

// dkimRecord is the DKIM key record, its text split into strings a zone
// file accepts.
func dkimRecord(selector, domain string, pub crypto.PublicKey) (dns.RR, error) {
	name, value, err := dkim.TXTRecord(selector, domain, pub)
	if err != nil {
		return nil, err
	}
	return &dns.TXT{
		Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: dnsTTL},
		Txt: splitTXT(value),
	}, nil
}

// splitTXT cuts a TXT value into the at most 255-byte strings of its
// wire form (RFC 1035 §3.3); resolvers join them again (RFC 7208 §3.3,
// RFC 6376 §3.6.2.2).
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// listenPort is the port of a listener address; 0 when it is off.
func listenPort(addr string) uint16 {
	if addr == "" {
		return 0
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}
