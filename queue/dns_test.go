package queue

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// zone is a small authoritative DNS server on loopback. Names it knows
// answer NOERROR (with or without records of the asked type); other names
// answer NXDOMAIN; names in servfail answer SERVFAIL.
type zone struct {
	addr string

	mu       sync.Mutex
	rrs      map[string][]dns.RR // by lower-case absolute name
	servfail map[string]bool
}

// newZone starts a DNS server serving the records, given in zone file
// syntax ("contoso.test. MX 10 mx1.contoso.test.").
func newZone(t *testing.T, records ...string) *zone {
	t.Helper()
	z := &zone{rrs: map[string][]dns.RR{}, servfail: map[string]bool{}}
	for _, rec := range records {
		z.add(t, rec)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func (z *zone) add(t *testing.T, rec string) {
	t.Helper()
	if name, ok := strings.CutPrefix(rec, "SERVFAIL "); ok {
		z.servfail[dns.CanonicalName(name)] = true
		return
	}
	rr, err := dns.NewRR("$TTL 60\n" + rec)
	if err != nil {
		t.Fatalf("record %q: %v", rec, err)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	name := dns.CanonicalName(rr.Header().Name)
	z.rrs[name] = append(z.rrs[name], rr)
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	z.mu.Lock()
	for _, q := range req.Question {
		name := dns.CanonicalName(q.Name)
		if z.servfail[name] {
			m.Rcode = dns.RcodeServerFailure
			continue
		}
		rrs, known := z.rrs[name]
		if !known {
			m.Rcode = dns.RcodeNameError
			continue
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	z.mu.Unlock()
	_ = w.WriteMsg(m)
}
