package smtp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/delivery"
)

// session is one SMTP connection.
type session struct {
	srv  *Server
	conn *gosmtp.Conn
	log  *slog.Logger

	user     string // authenticated user id
	userName string // the address they logged in with

	// The transaction under way.
	active     bool
	from       string
	size       int64
	recipients []string
}

func (s *Server) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	remote := ""
	if nc := c.Conn(); nc != nil {
		remote = nc.RemoteAddr().String()
	}
	sess := &session{srv: s, conn: c, log: s.log.With("remote", remote)}
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
				return errAuthzFailed
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
	if s.srv.opts.Submission && s.user == "" {
		return gosmtp.ErrAuthRequired
	}
	if s.srv.ctx.Err() != nil {
		return errShuttingDown
	}
	if s.srv.opts.Submission {
		// Refused here rather than after the whole message was uploaded;
		// the From: header is checked after DATA.
		if err := s.srv.opts.Directory().CheckEnvelopeSender(s.user, from); err != nil {
			s.log.Info("sender refused", "user", s.userName, "from", from, "reason", err.Error())
			return sendAsError(err)
		}
	}
	if opts != nil && opts.Size > 0 && s.srv.opts.MaxMessageBytes > 0 && opts.Size > s.srv.opts.MaxMessageBytes {
		return errTooBig
	}
	s.reset()
	s.srv.begin()
	s.srv.beginTransaction(s.conn)
	s.active = true
	s.from = strings.TrimSpace(from)
	if opts != nil {
		s.size = opts.Size
	}
	return nil
}

// Rcpt adds a recipient after asking the policy.
func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	to = strings.TrimSpace(to)
	if _, ok := s.srv.opts.Agent.ReverseSRS(to); ok {
		// A bounce to a forwarded message: it goes back to the original sender.
		s.recipients = append(s.recipients, to)
		return nil
	}
	dir := s.srv.opts.Directory()
	if refusal := dir.CheckRecipient(to, s.user != ""); refusal != nil {
		s.log.Info("recipient refused", "from", s.from, "to", to, "code", refusal.Code)
		return refusalError(refusal)
	}
	if target, ok := dir.Resolve(to); ok && s.srv.opts.Quota != nil {
		if err := s.checkQuota(target.ID, target.Kind.String()); err != nil {
			s.log.Info("recipient refused", "from", s.from, "to", to, "reason", "quota")
			return err
		}
	}
	s.recipients = append(s.recipients, to)
	return nil
}

// checkQuota refuses a mailbox that is full (or would be, by the SIZE the
// client announced). Groups are not checked here: each member's copy is.
func (s *session) checkQuota(id, kind string) error {
	if kind == "group" {
		return nil
	}
	ok, err := s.srv.opts.Quota.HasRoom(s.srv.ctx, id, max(s.size, 1))
	if err != nil {
		return s.internal("quota check", err)
	}
	if !ok {
		return errQuota
	}
	return nil
}

// Data reads the message and delivers it.
func (s *session) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, gosmtp.ErrTooLongLine) {
			s.log.Info("message refused", "from", s.from, "reason", "line too long")
			return errLineTooLong
		}
		var smtpErr *gosmtp.SMTPError
		if errors.As(err, &smtpErr) {
			s.log.Info("message refused", "from", s.from, "reason", smtpErr.Message)
			return smtpErr
		}
		if clientGone(err) {
			s.log.Info("message abandoned", "from", s.from, "reason", err.Error())
			return err // nobody is left to read a reply
		}
		return s.internal("read message", err)
	}
	if hasBareLF(body) {
		s.log.Info("message refused", "from", s.from, "reason", "bare LF")
		return errBareLF
	}
	if s.srv.opts.Submission {
		if body, err = s.checkSubmission(body); err != nil {
			return err
		}
	}
	_, tls := s.conn.TLSConnectionState()
	msg := &delivery.Message{
		From: s.from, Recipients: s.recipients, Authenticated: s.user, Body: body,
		RemoteAddr: s.remoteAddr(), Helo: s.conn.Hostname(), TLS: tls,
	}
	res, err := s.srv.opts.Agent.Deliver(s.srv.ctx, msg)
	if errors.Is(err, delivery.ErrTooManyHops) {
		s.log.Info("message refused", "from", s.from, "reason", "too many hops")
		return errTooManyHops
	}
	if err != nil {
		return s.internal("deliver", err)
	}
	if len(res.Refused) > 0 && res.Stored == 0 && res.Queued == 0 {
		return errTooManyHops
	}
	return nil
}

// checkSubmission enforces send-as rights (SPEC §5) and adds the
// Message-ID and Date a client left out.
func (s *session) checkSubmission(body []byte) ([]byte, error) {
	h := readHeader(body)
	dir := s.srv.opts.Directory()
	from := addresses(h, "From")
	sender := ""
	if l := addresses(h, "Sender"); len(l) > 0 {
		sender = l[0]
	}
	if err := dir.CheckSubmission(s.user, s.from, from, sender); err != nil {
		s.log.Info("message refused", "user", s.userName, "from", s.from, "reason", err.Error())
		return nil, sendAsError(err)
	}
	return completeHeader(body, h, s.srv.opts.Hostname), nil
}

func (s *session) remoteAddr() string {
	if nc := s.conn.Conn(); nc != nil {
		return nc.RemoteAddr().String()
	}
	return ""
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
func (s *session) Reset() { s.reset() }

func (s *session) reset() {
	if s.active {
		s.active = false
		s.srv.end()
		s.srv.endTransaction(s.conn)
	}
	s.from, s.size, s.recipients = "", 0, nil
}

// Logout ends the session.
func (s *session) Logout() error {
	s.reset()
	s.srv.untrack(s)
	return nil
}

// hasBareLF reports a LF not preceded by CR: SMTP smuggling and broken
// clients alike are refused, and nothing with bare LF is relayed.
func hasBareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		next := bytes.IndexByte(b[i+1:], '\n')
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}
