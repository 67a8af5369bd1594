package queue

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
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

// maxReply bounds the bytes read for one reply, all its lines together:
// textproto keeps buffering a line, or a multi-line reply, for as long as the
// server sends one.
const maxReply = 64 << 10

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

// session is an open SMTP connection, greeted and ready for MAIL. It speaks
// through net/textproto, which reads (multi-line) replies and dot-stuffs the
// message; commands are written to its buffer and flushed by send, so that a
// pipelined group leaves in one write.
type session struct {
	conn  net.Conn // the connection in use (TLS or not), for deadlines
	text  *textproto.Conn
	limit *replyLimiter
	ext   extensions // what the last EHLO offered
	host  string
	tls   bool
	stop  func() bool // stops closing the connection when the context ends
}

// use makes conn the connection the session speaks over. After STARTTLS
// whatever the old reader had buffered is dropped with it: plaintext that
// arrived before the handshake must not pass for an encrypted reply.
func (s *session) use(conn net.Conn) {
	s.conn = conn
	s.limit = &replyLimiter{r: conn}
	s.text = textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{s.limit, conn, conn})
}

// close says QUIT and closes the connection.
func (s *session) close() {
	s.stop()
	// QUIT is a courtesy; its reply changes nothing.
	if err := s.send(quitTimeout, "QUIT"); err == nil {
		_, _ = s.read(221, quitTimeout)
	}
	s.text.Close()
}

// send writes lines as commands and flushes them together, in one write as
// far as the connection allows.
func (s *session) send(timeout time.Duration, lines ...string) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	// The buffer keeps its first write error for Flush to return.
	for _, l := range lines {
		s.text.W.WriteString(l)
		s.text.W.WriteString("\r\n")
	}
	return s.text.W.Flush()
}

// read reads one reply. A reply other than expect (a full code, or the
// first digits of one) is returned as a *gosmtp.SMTPError; any other error
// means the connection can no longer be trusted.
func (s *session) read(expect int, timeout time.Duration) (string, error) {
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	s.limit.left = maxReply
	_, msg, err := s.text.ReadResponse(expect)
	if err != nil {
		return "", protoError(err)
	}
	return msg, nil
}

// cmd sends one command and reads its reply.
func (s *session) cmd(expect int, format string, args ...any) (string, error) {
	if err := s.send(commandTimeout, fmt.Sprintf(format, args...)); err != nil {
		return "", err
	}
	return s.read(expect, commandTimeout)
}

// connect opens an SMTP session to t, with TLS as mode says, and
// authenticates to the smarthost when credentials are configured.
func (r *Runner) connect(ctx context.Context, t target, mode tlsMode) (*session, error) {
	conn, err := r.dial(ctx, t.addr)
	if err != nil {
		return nil, err
	}
	// Reads and writes only know deadlines; closing the connection is how
	// the context's end reaches a blocked one.
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

// dial connects to addr ("host:port"), finding a host name's addresses
// through the server's resolver and trying each in turn.
func (r *Runner) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := r.dns.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: dialTimeout}
	var lastErr error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// greet runs the session up to a successful EHLO, over TLS where mode asks
// for it or the server offers it.
func (r *Runner) greet(ctx context.Context, conn net.Conn, t target, mode tlsMode) (*session, error) {
	s := &session{host: t.host}
	if mode == tlsImplicit {
		tc, err := handshake(ctx, conn, r.tlsConfig(t.host, true))
		if err != nil {
			return nil, err
		}
		conn, s.tls = tc, true
	}
	s.use(conn)
	if _, err := s.read(220, commandTimeout); err != nil {
		return nil, err
	}
	if err := s.hello(r.opts.Hostname); err != nil {
		return nil, err
	}
	if mode == tlsImplicit || mode == tlsNone {
		return s, nil
	}
	return r.startTLS(ctx, s, t, mode)
}

// startTLS upgrades s when the server offers STARTTLS, or fails when mode
// requires it and the server does not.
func (r *Runner) startTLS(ctx context.Context, s *session, t target, mode tlsMode) (*session, error) {
	if !s.ext.has("STARTTLS") {
		if mode == tlsStartTLS {
			return nil, errors.New("server does not offer STARTTLS")
		}
		return s, nil
	}
	if _, err := s.cmd(220, "STARTTLS"); err != nil {
		if mode == tlsStartTLS || !isReply(err) {
			return nil, err
		}
		// Refused: the session goes on in plaintext (RFC 3207 section 4).
		return s, nil
	}
	tc, err := handshake(ctx, s.conn, r.tlsConfig(t.host, mode == tlsStartTLS || r.sendsCredentials()))
	if err != nil {
		return nil, err
	}
	s.use(tc)
	s.tls = true
	// There is no new greeting, and the server has forgotten our EHLO
	// (RFC 3207 section 4.2).
	if err := s.hello(r.opts.Hostname); err != nil {
		return nil, err
	}
	return s, nil
}

// handshake runs a TLS client handshake on conn, within commandTimeout.
func handshake(ctx context.Context, conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", errTLSFailed, err)
	}
	return tc, nil
}

// hello introduces us by name, with HELO to a server that does not know
// EHLO (RFC 5321 section 4.1.1.1), and notes the extensions offered.
func (s *session) hello(name string) error {
	msg, err := s.cmd(250, "EHLO %s", name)
	if err == nil {
		s.ext = parseEHLO(msg)
		return nil
	}
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || (se.Code != 500 && se.Code != 502) {
		return err
	}
	s.ext = nil
	_, err = s.cmd(250, "HELO %s", name)
	return err
}

// sendsCredentials reports whether connections log in to a smarthost: its
// certificate is then verified whenever TLS is used, also when STARTTLS is
// opportunistic, so the password never goes to an impostor.
func (r *Runner) sendsCredentials() bool {
	return r.opts.Smarthost != "" && r.opts.SmarthostUsername != ""
}

// authenticate logs in to the smarthost when credentials are configured,
// never over a plaintext connection.
func (r *Runner) authenticate(s *session) error {
	if !r.sendsCredentials() {
		return nil
	}
	if !s.tls {
		return errors.New("smarthost connection is not encrypted; not sending credentials")
	}
	if !s.ext.auth(sasl.Plain) {
		return errors.New("smarthost does not offer AUTH PLAIN")
	}
	mech, ir, err := sasl.NewPlainClient("", r.opts.SmarthostUsername, r.opts.SmarthostPassword).Start()
	if err != nil {
		return fmt.Errorf("AUTH %s: %w", mech, err)
	}
	// PLAIN says everything in its initial response (RFC 4616).
	_, err = s.cmd(235, "AUTH %s %s", mech, base64.StdEncoding.EncodeToString(ir))
	var se *gosmtp.SMTPError
	if errors.As(err, &se) && se.Code == 334 {
		// A challenge PLAIN has no answer for: cancel the exchange (RFC 4954
		// section 4) so that the connection stays in step for QUIT.
		_, _ = s.cmd(501, "*")
		return fmt.Errorf("AUTH %s: unexpected challenge from the smarthost", mech)
	}
	if err != nil {
		return fmt.Errorf("AUTH %s: %w", mech, err)
	}
	return nil
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
			// Each line of a multi-line reply repeats the status (RFC 2034).
			se.EnhancedCode, se.Message = e, strings.ReplaceAll(text, "\n"+code+" ", "\n")
		}
	}
	return se
}

func isReply(err error) bool {
	var se *gosmtp.SMTPError
	return errors.As(err, &se)
}

// extensions are the EHLO keywords a server offered, upper-case, with their
// parameters.
type extensions map[string]string

// parseEHLO reads the extensions from the text of an EHLO reply.
func parseEHLO(reply string) extensions {
	ext := extensions{}
	lines := strings.Split(reply, "\n")
	for _, l := range lines[1:] { // the first line is the server's name
		if kw, param, _ := strings.Cut(strings.TrimSpace(l), " "); kw != "" {
			ext[strings.ToUpper(kw)] = param
		}
	}
	return ext
}

func (e extensions) has(name string) bool {
	_, ok := e[name]
	return ok
}

// auth reports whether the AUTH extension lists mech.
func (e extensions) auth(mech string) bool {
	return slices.ContainsFunc(strings.Fields(e["AUTH"]), func(m string) bool { return strings.EqualFold(m, mech) })
}

// replyLimiter fails a read once a reply has used up its budget, which read
// renews before each reply.
type replyLimiter struct {
	r    io.Reader
	left int
}

func (l *replyLimiter) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errors.New("reply too long")
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= n
	return n, err
}
