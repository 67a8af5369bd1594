package smtp

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// The deadlines of a connection. RFC 5321 section 4.5.3.2.7 asks a server
// to wait at least 5 minutes for each command; go-smtp applies that to
// every command line. A transaction (MAIL to the reply after DATA) gets at
// most TransactionTimeout on top: inside it, each read may wait
// CommandTimeout for the next bytes (the RFC's per-block wait), so a slow
// but steady upload is not cut, while one that trickles in (slowloris)
// is, once the whole transaction has taken TransactionTimeout.
const (
	// DefaultCommandTimeout is the wait for a command, and for the next
	// bytes of a message.
	DefaultCommandTimeout = 5 * time.Minute
	// DefaultTransactionTimeout bounds a whole transaction: 25 MiB in 10
	// minutes needs 43 KB/s.
	DefaultTransactionTimeout = 10 * time.Minute
)

// LoginGuard refuses logins from a client address that failed too often
// (package guard).
type LoginGuard interface {
	// Allow returns an error while logins of login from addr are blocked.
	Allow(addr netip.Addr, login string) error
	// Failed records a wrong password or unknown login.
	Failed(addr netip.Addr, login string)
}

var (
	errLoginBlocked = &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins, try again later"}
	errTxTimeout    = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 4, 2}, Message: "Transaction took too long, closing connection"}
)

// verify checks credentials through the login guard: a blocked address or
// (login, address) pair is refused before its password is looked at, and
// a wrong password is counted.
func (s *Server) verify(c *gosmtp.Conn, username, password string) (string, error) {
	addr := clientAddr(c)
	if g := s.opts.Guard; g != nil {
		if err := g.Allow(addr, username); err != nil {
			return "", errLoginBlocked
		}
	}
	id, err := s.opts.Auth.Authenticate(username, password)
	if errors.Is(err, ErrAuthFailed) && s.opts.Guard != nil {
		s.opts.Guard.Failed(addr, username)
	}
	return id, err
}

// authReply is the reply to a refused AUTH.
func authReply(err error) error {
	switch {
	case errors.Is(err, ErrSMTPDisabled):
		return errSMTPDisabled
	case errors.Is(err, errLoginBlocked):
		return errLoginBlocked
	}
	return gosmtp.ErrAuthFailed
}

func clientAddr(c *gosmtp.Conn) netip.Addr {
	nc := c.Conn()
	if nc == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// beginTransaction and endTransaction bound a transaction's time.
func (s *Server) beginTransaction(c *gosmtp.Conn) {
	if t := timedOf(c); t != nil {
		t.begin(s.opts.TransactionTimeout)
	}
}

func (s *Server) endTransaction(c *gosmtp.Conn) {
	if t := timedOf(c); t != nil {
		t.end()
	}
}

// timedOf finds the connection's timedConn, under TLS if need be.
func timedOf(c *gosmtp.Conn) *timedConn {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	t, _ := nc.(*timedConn)
	return t
}

// timedListener hands out timedConns.
type timedListener struct {
	net.Listener
	idle time.Duration
}

func (l timedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &timedConn{Conn: c, idle: l.idle}, nil
}

// timedConn keeps go-smtp's read deadlines, and within a transaction
// moves them with each read that brings bytes, but never past the
// transaction's end. Once that end has passed, the read that hit it fails
// with a timeout that carries the 421 reply (errors.As finds it), and
// every later read ends the connection.
type timedConn struct {
	net.Conn
	idle time.Duration

	mu      sync.Mutex
	wanted  time.Time // the read deadline go-smtp asked for
	txEnd   time.Time // zero outside a transaction
	expired bool
}

// SetReadDeadline records go-smtp's deadline and applies the earlier of
// it and the transaction's end.
func (c *timedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wanted = t
	return c.apply()
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (c *timedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// apply sets the read deadline in force; c.mu is held.
func (c *timedConn) apply() error {
	d := c.wanted
	if !c.txEnd.IsZero() && (d.IsZero() || c.txEnd.Before(d)) {
		d = c.txEnd
	}
	return c.Conn.SetReadDeadline(d)
}

func (c *timedConn) begin(limit time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.txEnd = time.Now().Add(limit)
	c.apply()
}

func (c *timedConn) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.txEnd = time.Time{}
	c.apply()
}

// Read reads, applying the transaction's end.
func (c *timedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	expired := c.expired
	c.mu.Unlock()
	if expired {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.txEnd.IsZero() {
		return n, err
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(c.txEnd) {
		c.expired = true
		return n, txTimeoutError{}
	}
	if n > 0 {
		c.wanted = time.Now().Add(c.idle)
		c.apply()
	}
	return n, err
}

// txTimeoutError is a read timeout that go-smtp treats as one (it says 421
// and closes when it reads a command) and that a Data handler turns into
// the 421 reply with errors.As.
type txTimeoutError struct{}

func (txTimeoutError) Error() string   { return "smtp: transaction took too long" }
func (txTimeoutError) Timeout() bool   { return true }
func (txTimeoutError) Temporary() bool { return false }

// As finds the reply for errors.As.
func (txTimeoutError) As(target any) bool {
	if p, ok := target.(**gosmtp.SMTPError); ok {
		*p = errTxTimeout
		return true
	}
	return false
}
