package main

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/miekg/dns"
)

// sinkMessage is one message a remote server received.
type sinkMessage struct {
	From string
	To   []string
	Data string
	TLS  bool // it came over TLS
}

// sink is a remote SMTP server on loopback that keeps what it receives and
// refuses recipients whose address starts with "reject".
type sink struct {
	addr string
	mu   sync.Mutex
	msgs []sinkMessage
	got  chan struct{}
}

func newSink(t *testing.T, host string) *sink {
	t.Helper()
	return newTLSSink(t, host, nil)
}

// newTLSSink is newSink offering STARTTLS with cfg (none when nil).
func newTLSSink(t *testing.T, host string, cfg *tls.Config) *sink {
	t.Helper()
	s := &sink{got: make(chan struct{}, 100)}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{sink: s, conn: c}, nil
	}))
	srv.TLSConfig = cfg
	srv.Domain = "sink.example"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// wait returns once n messages arrived.
func (s *sink) wait(t *testing.T, n int) []sinkMessage {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]sinkMessage(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("sink received %d messages, want %d", len(s.messages()), n)
		}
	}
}

func (s *sink) messages() []sinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMessage(nil), s.msgs...)
}

type sinkSession struct {
	sink *sink
	conn *gosmtp.Conn
	from string
	to   []string
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }
func (s *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if strings.HasPrefix(to, "reject") {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	_, tls := s.conn.TLSConnectionState()
	s.sink.msgs = append(s.sink.msgs, sinkMessage{From: s.from, To: s.to, Data: string(b), TLS: tls})
	s.sink.mu.Unlock()
	s.sink.got <- struct{}{}
	return nil
}

// dnsZone is an authoritative DNS server on loopback for MX, A and TXT.
type dnsZone struct {
	addr string
	mu   sync.Mutex
	rrs  map[string][]dns.RR
}

func newDNSZone(t *testing.T, records ...string) *dnsZone {
	t.Helper()
	z := &dnsZone{rrs: map[string][]dns.RR{}}
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
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return z
}

func (z *dnsZone) add(t *testing.T, rec string) {
	t.Helper()
	rr, err := dns.NewRR("$TTL 60\n" + rec)
	if err != nil {
		t.Fatalf("record %q: %v", rec, err)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	name := dns.CanonicalName(rr.Header().Name)
	z.rrs[name] = append(z.rrs[name], rr)
}

func (z *dnsZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	z.mu.Lock()
	for _, q := range req.Question {
		rrs, known := z.rrs[dns.CanonicalName(q.Name)]
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
	w.WriteMsg(m)
}

// txt returns the TXT record of a name, for DKIM verification.
func (z *dnsZone) txt(name string) []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []string
	for _, rr := range z.rrs[dns.CanonicalName(name)] {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}
