package queue

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// sunkMail is one transaction a sink accepted, or was offered.
type sunkMail struct {
	helo     string
	tls      bool
	authUser string
	from     string
	rcpts    []string
	data     []byte
}

// sinkConfig shapes a sink's answers.
type sinkConfig struct {
	tls      *tls.Config             // offers STARTTLS when set
	rcpt     func(to string) error   // nil accepts everyone
	data     func(n int) error       // n counts DATA commands, from 1; nil accepts
	login    map[string]string       // user -> password; AUTH PLAIN (after TLS) when set
	dataWait time.Duration           // pause before answering the final dot
	mail     func(from string) error // nil accepts every sender
	wrap     func(net.Conn) net.Conn // nil serves connections as they are accepted
	smtputf8 bool                    // offers SMTPUTF8
}

// sink is an SMTP server on a loopback address that records what it gets.
type sink struct {
	addr string
	cfg  sinkConfig

	mu    sync.Mutex
	conns int
	datas int
	mails []sunkMail // accepted transactions
}

// testNet hands out loopback addresses under one prefix ("127.3.0") that all
// listen on the same port, so that Options.Port reaches every sink.
type testNet struct {
	t      *testing.T
	prefix string
	port   int
}

func newTestNet(t *testing.T, prefix string) *testNet {
	return &testNet{t: t, prefix: prefix}
}

// ip is the n'th address of the net.
func (n *testNet) ip(host int) string { return n.prefix + "." + strconv.Itoa(host) }

// sink starts a sink on the n'th address of the net.
func (n *testNet) sink(host int, cfg sinkConfig) *sink {
	n.t.Helper()
	ip := n.ip(host)
	var ln net.Listener
	var err error
	if n.port == 0 {
		ln, err = net.Listen("tcp", ip+":0")
		if err == nil {
			n.port = ln.Addr().(*net.TCPAddr).Port
		}
	} else {
		ln, err = net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(n.port)))
	}
	if err != nil {
		n.t.Fatalf("sink on %s: %v", ip, err)
	}
	s := &sink{addr: ln.Addr().String(), cfg: cfg}
	ln = &countingListener{Listener: ln, s: s}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	srv.Domain = "sink-" + ip
	srv.TLSConfig = cfg.tls
	srv.EnableSMTPUTF8 = cfg.smtputf8
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	go func() { _ = srv.Serve(ln) }()
	n.t.Cleanup(func() { srv.Close() })
	return s
}

// deadHost checks that nobody listens on the n'th address, so that a
// connection there is refused, and returns the address.
func (n *testNet) deadHost(host int) string {
	n.t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(n.ip(host), strconv.Itoa(n.port)), time.Second)
	if err == nil {
		c.Close()
		n.t.Fatalf("%s is not dead", n.ip(host))
	}
	return n.ip(host)
}

// countingListener counts connections (go-smtp starts a new session after
// STARTTLS, so sessions are not connections).
type countingListener struct {
	net.Listener
	s *sink
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.conns++
	l.s.mu.Unlock()
	if l.s.cfg.wrap != nil {
		c = l.s.cfg.wrap(c)
	}
	return c, nil
}

func (s *sink) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return &sinkSession{sink: s, conn: c}, nil
}

func (s *sink) accepted() []sunkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mails)
}

func (s *sink) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

type sinkSession struct {
	sink *sink
	conn *gosmtp.Conn
	cur  sunkMail
}

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.sink.cfg.login == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if want, ok := ss.sink.cfg.login[user]; !ok || want != pass {
			return gosmtp.ErrAuthFailed
		}
		ss.cur.authUser = user
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if ss.sink.cfg.login != nil && ss.cur.authUser == "" {
		return gosmtp.ErrAuthRequired
	}
	if f := ss.sink.cfg.mail; f != nil {
		if err := f(from); err != nil {
			return err
		}
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.cur = sunkMail{helo: ss.conn.Hostname(), tls: isTLS, authUser: ss.cur.authUser, from: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if f := ss.sink.cfg.rcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	ss.cur.rcpts = append(ss.cur.rcpts, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.sink
	s.mu.Lock()
	s.datas++
	n := s.datas
	s.mu.Unlock()
	time.Sleep(s.cfg.dataWait)
	if s.cfg.data != nil {
		if err := s.cfg.data(n); err != nil {
			return err
		}
	}
	ss.cur.data = data
	s.mu.Lock()
	s.mails = append(s.mails, ss.cur)
	s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.cur = sunkMail{authUser: ss.cur.authUser} }
func (ss *sinkSession) Logout() error { return nil }

// reject is a reply for sinkConfig hooks.
func reject(code int, enhanced gosmtp.EnhancedCode, text string) error {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
}
