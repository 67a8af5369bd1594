package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Time limits for one connection. The whole session also ends when its
// context does (see Runner.Run for shutdown).
const (
	dialTimeout       = 30 * time.Second
	commandTimeout    = 5 * time.Minute  // RFC 5321 section 4.5.3.2
	submissionTimeout = 10 * time.Minute // the reply after the final dot
	sessionTimeout    = 20 * time.Minute
	quitTimeout       = 10 * time.Second // QUIT is a courtesy; do not wait long for it
)

// tlsMode says how a connection uses TLS.
type tlsMode uint8

const (
	tlsOpportunistic tlsMode = iota // STARTTLS when offered, certificate not checked
	tlsNone                         // plaintext even when STARTTLS is offered
	tlsStartTLS                     // STARTTLS required
	tlsImplicit                     // TLS from the first byte
)

// errTLSFailed marks a failed STARTTLS handshake, after which an
// opportunistic sender reconnects without TLS.
var errTLSFailed = errors.New("TLS handshake failed")

// session is an open SMTP connection, greeted and ready for MAIL.
type session struct {
	client *gosmtp.Client
	host   string
	tls    bool
	stop   func() bool // stops closing the connection when the context ends
}

func (s *session) close() {
	s.stop()
	// QUIT is a courtesy; its reply changes nothing.
	s.client.CommandTimeout = quitTimeout
	if err := s.client.Quit(); err != nil {
		s.client.Close()
	}
}

// connect opens an SMTP session to t, with TLS as mode says, and
// authenticates to the smarthost when credentials are configured.
func (r *Runner) connect(ctx context.Context, t target, mode tlsMode) (*session, error) {
	d := net.Dialer{Timeout: dialTimeout, Resolver: r.resolver}
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	// The SMTP client only knows deadlines; closing the connection is how
	// the context's end reaches a blocked read or write.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	s, err := r.greet(ctx, conn, t, mode)
	if err != nil {
		stop()
		conn.Close()
		return nil, err
	}
	s.stop = stop
	if err := r.authenticate(s); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// greet runs the session up to a successful EHLO, over TLS where mode asks
// for it or the server offers it.
func (r *Runner) greet(ctx context.Context, conn net.Conn, t target, mode tlsMode) (*session, error) {
	usedTLS := false
	var c net.Conn = conn
	if mode == tlsImplicit {
		tc := tls.Client(conn, r.tlsConfig(t.host, true))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("%w: %v", errTLSFailed, err)
		}
		c, usedTLS = tc, true
	} else {
		var err error
		if c, usedTLS, err = r.prelude(ctx, conn, t, mode); err != nil {
			return nil, err
		}
	}
	client := gosmtp.NewClient(c)
	client.CommandTimeout = commandTimeout
	client.SubmissionTimeout = submissionTimeout
	if err := client.Hello(r.opts.Hostname); err != nil {
		client.Close()
		return nil, err
	}
	return &session{client: client, host: t.host, tls: usedTLS}, nil
}

// prelude reads the greeting, says EHLO and runs STARTTLS when offered (or
// required). go-smtp v0.25 can only start TLS on a client it creates itself,
// and that client says "EHLO localhost"; speaking these few lines here lets
// us introduce ourselves by our hostname. The returned connection starts
// with a copy of the greeting, for the go-smtp client that takes over.
func (r *Runner) prelude(ctx context.Context, conn net.Conn, t target, mode tlsMode) (net.Conn, bool, error) {
	if err := conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		return nil, false, err
	}
	tp := textproto.NewConn(conn)
	_, greeting, err := tp.ReadResponse(220)
	if err != nil {
		return nil, false, protoError(err)
	}
	offered := false
	if lines, err := command(tp, 250, "EHLO %s", r.opts.Hostname); err == nil {
		offered = hasExtension(lines, "STARTTLS")
	}
	if !offered || mode == tlsNone {
		if mode == tlsStartTLS {
			return nil, false, errors.New("server does not offer STARTTLS")
		}
		return replayGreeting(conn, greeting), false, conn.SetDeadline(time.Time{})
	}
	if _, err := command(tp, 220, "STARTTLS"); err != nil {
		if mode == tlsStartTLS {
			return nil, false, err
		}
		// Refused: the session goes on in plaintext (RFC 3207 section 4).
		return replayGreeting(conn, greeting), false, conn.SetDeadline(time.Time{})
	}
	tc := tls.Client(conn, r.tlsConfig(t.host, mode == tlsStartTLS))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, false, fmt.Errorf("%w: %v", errTLSFailed, err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, false, err
	}
	// After STARTTLS there is no new greeting; the client still waits for one.
	return replayGreeting(tc, greeting), true, nil
}

// command sends one command and reads its reply.
func command(tp *textproto.Conn, expect int, format string, args ...any) (string, error) {
	id, err := tp.Cmd(format, args...)
	if err != nil {
		return "", err
	}
	tp.StartResponse(id)
	defer tp.EndResponse(id)
	_, msg, err := tp.ReadResponse(expect)
	if err != nil {
		return "", protoError(err)
	}
	return msg, nil
}

// protoError turns a textproto reply error into the *gosmtp.SMTPError the
// rest of the package understands.
func protoError(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	se := &gosmtp.SMTPError{Code: te.Code, Message: te.Msg}
	if code, text, ok := strings.Cut(te.Msg, " "); ok && validStatus(code) {
		var e gosmtp.EnhancedCode
		if _, err := fmt.Sscanf(code, "%d.%d.%d", &e[0], &e[1], &e[2]); err == nil {
			se.EnhancedCode, se.Message = e, text
		}
	}
	return se
}

func hasExtension(ehlo, name string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] { // the first line is the server's name
		if kw, _, _ := strings.Cut(strings.TrimSpace(l), " "); strings.EqualFold(kw, name) {
			return true
		}
	}
	return false
}

// replayGreeting returns conn with a synthetic 220 line in front of what the
// server sends next.
func replayGreeting(conn net.Conn, greeting string) net.Conn {
	line := "220 " + strings.ReplaceAll(oneLine(greeting), "\n", " ") + "\r\n"
	return &greetedConn{Conn: conn, pending: []byte(line)}
}

type greetedConn struct {
	net.Conn
	pending []byte
}

func (c *greetedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// authenticate logs in to the smarthost when credentials are configured,
// never over a plaintext connection.
func (r *Runner) authenticate(s *session) error {
	if r.opts.Smarthost == "" || r.opts.SmarthostUsername == "" {
		return nil
	}
	if !s.tls {
		return errors.New("smarthost connection is not encrypted; not sending credentials")
	}
	if !s.client.SupportsAuth(sasl.Plain) {
		return errors.New("smarthost does not offer AUTH PLAIN")
	}
	return s.client.Auth(sasl.NewPlainClient("", r.opts.SmarthostUsername, r.opts.SmarthostPassword))
}

// tlsConfig is the client configuration for one server. Certificates are only
// checked when verify is set (the smarthost) and the operator has not turned
// checking off.
func (r *Runner) tlsConfig(host string, verify bool) *tls.Config {
	c := r.opts.TLSConfig.Clone()
	if c.ServerName == "" {
		c.ServerName = host
	}
	if !verify {
		c.InsecureSkipVerify = true
	}
	return c
}
