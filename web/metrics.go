package web

import "errors"

// Metrics is told of logins, for monitoring (package metrics). HTTP Basic
// sends credentials with every request, so every authenticated request
// counts. Its methods must be safe for concurrent use.
type Metrics interface {
	// LoggedIn counts a request with good credentials.
	LoggedIn()
	// LoginFailed counts a refused one: "credentials", "blocked" or
	// "refused" (address books disabled for the mailbox).
	LoginFailed(reason string)
}

// noMetrics records nothing.
type noMetrics struct{}

func (noMetrics) LoggedIn()          {}
func (noMetrics) LoginFailed(string) {}

// recordLogin counts the outcome of a check of credentials; blocked means
// the guard refused before the password was looked at.
func (s *Server) recordLogin(err error, blocked bool) {
	switch {
	case blocked:
		s.opts.Metrics.LoginFailed("blocked")
	case err == nil:
		s.opts.Metrics.LoggedIn()
	case errors.Is(err, ErrDAVDisabled):
		s.opts.Metrics.LoginFailed("refused")
	default:
		s.opts.Metrics.LoginFailed("credentials")
	}
}
