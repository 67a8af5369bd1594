// Package testdns is an authoritative DNS server on loopback for tests:
// fill it with records in zone-file syntax, make names fail (SERVFAIL) or
// go silent (no answer at all), and count the questions it was asked.
// It answers over UDP (truncating what does not fit, as real servers do)
// and TCP on the same port.
package testdns

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server. Names it has records for answer
// NOERROR (with or without records of the asked type); other names answer
// NXDOMAIN.
type Server struct {
	// Addr is "127.0.0.1:port", for Options.Server or [dns] resolver.
	Addr string

	mu       sync.Mutex
	rrs      map[string][]dns.RR // by canonical name
	servfail map[string]bool
	silent   map[string]bool
	allQuiet bool
	asked    map[string]int // by "name TYPE"
}

// New starts a server with records such as "contoso.test. TXT \"v=spf1 -all\""
// (a TTL of 60 s unless the record names one); it stops when the test ends.
func New(t testing.TB, records ...string) *Server {
	t.Helper()
	s := &Server{rrs: map[string][]dns.RR{}, servfail: map[string]bool{}, silent: map[string]bool{}, asked: map[string]int{}}
	s.Add(t, records...)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

// Add adds records in zone-file syntax.
func (s *Server) Add(t testing.TB, records ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range records {
		rr, err := dns.NewRR("$TTL 60\n" + rec)
		if err != nil || rr == nil {
			t.Fatalf("record %q: %v", rec, err)
		}
		name := dns.CanonicalName(rr.Header().Name)
		s.rrs[name] = append(s.rrs[name], rr)
	}
}

// Remove forgets every record of name.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rrs, dns.CanonicalName(name))
}

// ServFail makes questions about name answer SERVFAIL (on) or normally.
func (s *Server) ServFail(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail[dns.CanonicalName(name)] = on
}

// Silence makes questions about name and every name below it go
// unanswered (on) or answered.
func (s *Server) Silence(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent[dns.CanonicalName(name)] = on
}

// SilenceAll makes every question go unanswered (on) or answered.
func (s *Server) SilenceAll(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allQuiet = on
}

// Asked returns how often the server was asked for records of type qtype
// ("TXT", "MX", ...) at name, answered or not.
func (s *Server) Asked(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[dns.CanonicalName(name)+" "+strings.ToUpper(qtype)]
}

func (s *Server) silenced(name string) bool {
	for n := name; n != ""; {
		if s.silent[n] {
			return true
		}
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = rest
	}
	return false
}

// ServeDNS answers one question.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	for _, q := range req.Question {
		name := dns.CanonicalName(q.Name)
		s.asked[name+" "+dns.TypeToString[q.Qtype]]++
		if s.allQuiet || s.silenced(name) {
			s.mu.Unlock()
			return
		}
		if s.servfail[name] {
			m.Rcode = dns.RcodeServerFailure
			continue
		}
		rrs, known := s.rrs[name]
		if !known {
			m.Rcode = dns.RcodeNameError
			continue
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	s.mu.Unlock()
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}
