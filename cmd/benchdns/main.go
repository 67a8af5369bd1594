// Command benchdns is the DNS server of a benchmark with the inbound checks
// on (bench/run.sh with CHECKS=on): it answers the SPF, DKIM and DMARC
// questions about one sending domain, so the server under test does every
// lookup and verification of mail from outside without the internet.
//
//	benchdns -listen 127.0.0.1:5353 -domain mailbench.invalid -key key.pem
//
// It makes a fresh RSA key of 2048 bits (what most senders sign with),
// writes it to -key (PKCS #8 PEM, for mailbench -dkim-key) and publishes
// its public half under selector "mb".
// SPF authorises loopback; DMARC is p=reject, so mail that fails would be
// refused, not silently passed. Other names answer NXDOMAIN.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/miekg/dns"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5353", "UDP address to answer on")
	domain := flag.String("domain", "mailbench.invalid", "the sending domain")
	keyPath := flag.String("key", "", "where to write the DKIM private key (required)")
	flag.Parse()
	if *keyPath == "" {
		log.Fatal("benchdns: -key is required")
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		log.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		log.Fatal(err)
	}
	d := dns.Fqdn(strings.ToLower(*domain))
	txt := map[string][]string{
		d:                    {"v=spf1 ip4:127.0.0.0/8 -all"},
		"_dmarc." + d:        {"v=DMARC1; p=reject"},
		"mb._domainkey." + d: chunks("v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)),
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if len(req.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			w.WriteMsg(m)
			return
		}
		q := req.Question[0]
		value, ok := txt[strings.ToLower(q.Name)]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
				Txt: value,
			})
		}
		w.WriteMsg(m)
	})
	fmt.Fprintf(os.Stderr, "benchdns: answering for %s on %s\n", d, *listen)
	srv := &dns.Server{Addr: *listen, Net: "udp", Handler: handler}
	if err := srv.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}

// chunks splits a TXT value into strings of at most 255 bytes (RFC 1035
// section 3.3.14); readers join them again.
func chunks(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
