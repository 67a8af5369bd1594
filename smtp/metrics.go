package smtp

import (
	"errors"
	"io"

	gosmtp "github.com/emersion/go-smtp"
)

// Metrics is told what a server does, for monitoring (package metrics).
// Reasons are the fixed words of refusalReason and loginFailure, never an
// address or a reply's text. Its methods must be safe for concurrent use.
type Metrics interface {
	// Received counts a message accepted with 250.
	Received()
	// Refused counts a refusal of a sender, a recipient or a message.
	Refused(reason string)
	// LoggedIn counts a successful AUTH.
	LoggedIn()
	// LoginFailed counts a refused AUTH.
	LoginFailed(reason string)
}

// noMetrics records nothing: the Metrics of a server without one.
type noMetrics struct{}

func (noMetrics) Received()          {}
func (noMetrics) Refused(string)     {}
func (noMetrics) LoggedIn()          {}
func (noMetrics) LoginFailed(string) {}

// countedSession counts the outcome of each command of a transaction by
// the reply it got: whatever part of the session refuses, the reply is
// the one place every refusal passes.
type countedSession struct {
	*session
	metrics Metrics
}

// Mail counts a refused sender.
func (c countedSession) Mail(from string, opts *gosmtp.MailOptions) error {
	return c.count(c.session.Mail(from, opts))
}

// Rcpt counts a refused recipient.
func (c countedSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	return c.count(c.session.Rcpt(to, opts))
}

// Data counts an accepted or a refused message.
func (c countedSession) Data(r io.Reader) error {
	err := c.session.Data(r)
	if err == nil {
		c.metrics.Received()
	}
	return c.count(err)
}

func (c countedSession) count(err error) error {
	if reason := refusalReason(err); reason != "" {
		c.metrics.Refused(reason)
	}
	return err
}

// refusalReason names the kind of refusal a reply is, by its enhanced
// status code (RFC 3463, RFC 7372); "" when err is no reply (the client
// went away).
func refusalReason(err error) string {
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code < 400 {
		return ""
	}
	e := se.EnhancedCode
	switch {
	case e[1] == 1 && e[2] == 1:
		return "unknown_recipient"
	case e[1] == 1:
		return "bad_address"
	case e[1] == 2 && e[2] == 2:
		return "quota"
	case e[1] == 3 && e[2] == 4, e[1] == 2 && e[2] == 3:
		return "size"
	case e[1] == 4 && e[2] == 6:
		return "loop"
	case e[1] == 5:
		return "protocol"
	case e[1] == 7 && e[2] >= 20 && e[2] <= 29:
		return "sender_auth" // SPF, DKIM, DMARC
	case e[1] == 7:
		return "policy"
	case e[1] == 3 && e[2] == 0:
		return "internal"
	}
	return "other"
}

// recordLogin counts the outcome of an AUTH.
func (s *Server) recordLogin(err error) {
	switch {
	case err == nil:
		s.opts.Metrics.LoggedIn()
	case errors.Is(err, ErrAuthFailed):
		s.opts.Metrics.LoginFailed("credentials")
	case errors.Is(err, errLoginBlocked):
		s.opts.Metrics.LoginFailed("blocked")
	case errors.Is(err, ErrSMTPDisabled):
		s.opts.Metrics.LoginFailed("refused")
	default:
		s.opts.Metrics.LoginFailed("other")
	}
}
