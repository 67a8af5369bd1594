package imap

import (
	"errors"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Metrics is told of logins, for monitoring (package metrics). Reasons are
// the fixed words of recordLogin. Its methods must be safe for concurrent
// use.
type Metrics interface {
	// LoggedIn counts a successful LOGIN or AUTHENTICATE.
	LoggedIn()
	// LoginFailed counts a refused one.
	LoginFailed(reason string)
}

// noMetrics records nothing: the Metrics of a server without one.
type noMetrics struct{}

func (noMetrics) LoggedIn()          {}
func (noMetrics) LoginFailed(string) {}

// recordLogin counts the outcome of a login: wrong credentials, a blocked
// address, or a mailbox that may not log in (IMAP disabled, no right on
// the shared mailbox asked for).
func (s *Server) recordLogin(err error) {
	var ie *goimap.Error
	switch {
	case err == nil:
		s.opts.Metrics.LoggedIn()
	case errors.Is(err, imapserver.ErrAuthFailed):
		s.opts.Metrics.LoginFailed("credentials")
	case errors.Is(err, errLoginBlocked):
		s.opts.Metrics.LoginFailed("blocked")
	case errors.As(err, &ie) && (ie.Code == goimap.ResponseCodeContactAdmin || ie.Code == goimap.ResponseCodeAuthorizationFailed):
		s.opts.Metrics.LoginFailed("refused")
	default:
		s.opts.Metrics.LoginFailed("other")
	}
}
