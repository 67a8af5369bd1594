package smtp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/policy"
)

// session is one SMTP connection.
type session struct {
	srv     *Server
	conn    *gosmtp.Conn
	log     *slog.Logger
	remote  string
	trusted bool // the client is in the trusted networks: no limits

	user     string // authenticated user id
	userName string // the address they logged in with

	tx      *delivery.Transaction // the transaction under way, nil between them
	unknown int                   // RCPTs answered 550 5.1.1 on this connection

	// go-smtp v0.26.0's Server.Close calls Logout on its own goroutine
	// while the connection's goroutine may be inside Mail, Rcpt or Data
	// (it takes no lock around session calls), so both would touch tx.
	// mu guards busy (a command is running) and closed (Logout came); a
	// Logout during a command leaves the transaction to the command's end.
	mu     sync.Mutex
	busy   bool
	closed bool
}

// enter begins a command that uses the transaction; false once Logout
// came, and then the command must not run.
func (s *session) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.busy = true
	return true
}

// leave ends a command, and ends the transaction too when Logout came
// meanwhile.
func (s *session) leave() {
	s.mu.Lock()
	s.busy = false
	closed := s.closed
	s.mu.Unlock()
	if closed {
		s.reset()
	}
}

func (s *Server) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	sess := &session{srv: s, conn: c}
	if nc := c.Conn(); nc != nil {
		sess.remote = nc.RemoteAddr().String()
		if tcp, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
			sess.trusted = s.opts.Trusted(tcp.IP)
		}
	}
	sess.log = s.log.With("remote", sess.remote)
	if !s.opts.Submission {
		sess.log.Info("smtp connect", "trusted", sess.trusted)
	}
	s.track(sess)
	return countedSession{sess, s.opts.Metrics}, nil
}

// AuthMechanisms lists PLAIN and LOGIN on submission; the MX port offers
// none.
func (s *session) AuthMechanisms() []string {
	if !s.srv.opts.Submission {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a SASL exchange.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.srv.opts.Submission {
		return nil, gosmtp.ErrAuthUnsupported
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && !strings.EqualFold(identity, username) {
				// An authorization identity opens a shared mailbox as
				// an account (SPEC §5), as the login target*member does.
				username = identity + "*" + username
			}
			return s.authenticate(username, password)
		}), nil
	case sasl.Login:
		return newLoginServer(s.authenticate), nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (s *session) authenticate(username, password string) error {
	id, err := s.srv.verify(s.conn, username, password)
	s.srv.recordLogin(err)
	if err != nil {
		s.log.Info("smtp login refused", "username", username, "reason", err.Error())
		if d := s.srv.opts.AuthFailureDelay; d > 0 {
			select {
			case <-time.After(d):
			case <-s.srv.ctx.Done():
			}
		}
		return authReply(err)
	}
	s.user, s.userName = id, username
	s.log.Info("smtp login", "username", username)
	return nil
}

// Mail starts a transaction.
func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if !s.enter() {
		return errShuttingDown
	}
	defer s.leave()
	if s.srv.opts.Submission && s.user == "" {
		return gosmtp.ErrAuthRequired
	}
	if s.srv.ctx.Err() != nil {
		return errShuttingDown
	}
	var size int64
	if opts != nil {
		size = opts.Size
	}
	if size > 0 && s.srv.opts.MaxMessageBytes > 0 && size > s.srv.opts.MaxMessageBytes {
		return errTooBig
	}
	s.reset()
	_, tls := s.conn.TLSConnectionState()
	facts := delivery.Facts{
		RemoteAddr: s.remote, Helo: s.conn.Hostname(), TLS: tls, Authenticated: s.user, Trusted: s.trusted,
	}
	tx, err := s.srv.opts.Agent.Begin(s.srv.ctx, facts, from, size)
	if err != nil {
		// On submission a refused sender is refused here, rather than after
		// the whole message was uploaded.
		s.log.Info("sender refused", "user", s.userName, "from", from, "reason", err.Error())
		return s.refuse("mail", err)
	}
	s.srv.begin()
	s.srv.beginTransaction(s.conn)
	s.tx = tx
	return nil
}

// Rcpt adds a recipient to the transaction.
func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if !s.enter() {
		return errShuttingDown
	}
	defer s.leave()
	err := s.tx.AddRecipient(s.srv.ctx, to)
	if err == nil {
		return nil
	}
	s.log.Debug("recipient refused", "id", s.tx.ID(), "to", to, "reason", err.Error())
	if errors.Is(err, policy.ErrNoSuchMailbox) && !s.trusted {
		return s.unknownRecipient(err)
	}
	return s.refuse("rcpt", err)
}

// The unknown-recipient answers one connection gets before they slow
// down, and before it is closed: harvesting addresses is slow, while a
// real sender's few typos are answered at once.
const (
	unknownSlowAfter  = 20
	unknownCloseAfter = 30
)

// unknownRecipient answers a 550 5.1.1, slowly past unknownSlowAfter of
// them, and past unknownCloseAfter with 421 and the end of the connection.
func (s *session) unknownRecipient(err error) error {
	s.unknown++
	if s.unknown > unknownCloseAfter {
		s.log.Info("too many unknown recipients; closing", "count", s.unknown)
		s.closeWith(errTooManyUnknown)
		return errTooManyUnknown
	}
	if s.unknown > unknownSlowAfter {
		select {
		case <-time.After(s.srv.opts.UnknownRecipientDelay):
		case <-s.srv.ctx.Done():
		}
	}
	return s.refuse("rcpt", err)
}

// closeWith writes a last reply and closes the connection. go-smtp cannot
// close a connection after a reply of a command, so the line goes to the
// socket directly; go-smtp's own answer then fails on the closed socket.
func (s *session) closeWith(e *gosmtp.SMTPError) {
	nc := s.conn.Conn()
	if nc == nil {
		return
	}
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(nc, replyLine(s.srv.opts.Hostname, e))
	nc.Close()
}

// replyLine is e as one reply line.
func replyLine(hostname string, e *gosmtp.SMTPError) string {
	return fmt.Sprintf("%d %d.%d.%d %s %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], hostname, e.Message)
}

// Data reads the message and delivers it.
func (s *session) Data(r io.Reader) error {
	if !s.enter() {
		return errShuttingDown
	}
	defer s.leave()
	body, err := io.ReadAll(r)
	if err != nil {
		return s.readFailed(err)
	}
	if reason := badLineEnding(body); reason != "" {
		s.log.Info("message refused", "id", s.tx.ID(), "reason", reason)
		return errBadLineEndings
	}
	if err := s.tx.Data(s.srv.ctx, body); err != nil {
		return s.refuse("data", err)
	}
	return nil
}

// readFailed answers a DATA or BDAT that could not be read whole.
func (s *session) readFailed(err error) error {
	if errors.Is(err, gosmtp.ErrTooLongLine) {
		s.log.Info("message refused", "id", s.tx.ID(), "reason", "line too long")
		return errLineTooLong
	}
	var smtpErr *gosmtp.SMTPError
	if errors.As(err, &smtpErr) {
		s.log.Info("message refused", "id", s.tx.ID(), "reason", smtpErr.Message)
		return smtpErr
	}
	if clientGone(err) {
		s.log.Info("message abandoned", "id", s.tx.ID(), "reason", err.Error())
		return err // nobody is left to read a reply
	}
	return s.internal("read message", err)
}

// refuse answers a refusal with its reply, and any other error with a
// temporary failure under a logged reference.
func (s *session) refuse(op string, err error) error {
	if r := reply(err); r != nil {
		return r
	}
	if s.srv.ctx.Err() != nil {
		return errShuttingDown
	}
	return s.internal(op, err)
}

// internal logs an unexpected error under a reference and returns a
// temporary failure that names it.
func (s *session) internal(what string, err error) error {
	var b [6]byte
	rand.Read(b[:])
	ref := hex.EncodeToString(b[:])
	s.log.Error("smtp internal error", "ref", ref, "op", what, "err", err)
	return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "Internal error, reference " + ref}
}

// clientGone reports whether a read failed because the client hung up or
// stopped sending, not because of anything wrong here.
func clientGone(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// Reset ends the transaction.
func (s *session) Reset() {
	if s.enter() {
		s.reset()
		s.leave()
	}
}

func (s *session) reset() {
	if s.tx != nil {
		s.tx.Abort()
		s.tx = nil
		s.srv.end()
		s.srv.endTransaction(s.conn)
	}
}

// Logout ends the session. Called by go-smtp's Close from another
// goroutine during a command, it leaves the transaction to that command.
func (s *session) Logout() error {
	s.mu.Lock()
	s.closed = true
	busy := s.busy
	s.mu.Unlock()
	if !busy {
		s.reset()
	}
	s.srv.untrack(s)
	return nil
}

// badLineEnding names what makes a message unacceptable to relay: a LF
// not preceded by CR, a CR not followed by LF, or a NUL (SMTP smuggling
// and broken clients alike); "" when there is none.
func badLineEnding(b []byte) string {
	for i, c := range b {
		switch c {
		case 0:
			return "NUL"
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return "bare LF"
			}
		case '\r':
			if i+1 == len(b) || b[i+1] != '\n' {
				return "bare CR"
			}
		}
	}
	return ""
}
