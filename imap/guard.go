package imap

import (
	"errors"
	"net/netip"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// LoginGuard refuses logins from a client address that failed too often
// (package guard).
type LoginGuard interface {
	// Allow returns an error while logins of login from addr are blocked.
	Allow(addr netip.Addr, login string) error
	// Failed records a wrong password or unknown login.
	Failed(addr netip.Addr, login string)
}

// errLoginBlocked is temporary (UNAVAILABLE, RFC 5530): the password may
// well be right, and a client should not ask its user for another one.
var errLoginBlocked = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeUnavailable, Text: "Too many failed logins, try again later"}

// guardedLogin is tryLogin behind the login guard: a blocked address or
// (login, address) pair is refused before its password is looked at, and
// a wrong password is counted against the name whose password was
// checked (the member of a target*member login).
func (s *session) guardedLogin(username, password, target string) error {
	g := s.srv.opts.Guard
	if g == nil {
		return s.tryLogin(username, password, target)
	}
	addr := s.clientAddr()
	name := username
	if _, member, ok := splitMasterLogin(username); ok && target == "" {
		name = member
	}
	if g.Allow(addr, name) != nil {
		s.srv.log.Info("imap login refused", "remote", s.remote(), "username", username, "reason", "blocked after failed logins")
		return errLoginBlocked
	}
	err := s.tryLogin(username, password, target)
	if errors.Is(err, imapserver.ErrAuthFailed) {
		g.Failed(addr, name)
	}
	return err
}

func (s *session) clientAddr() netip.Addr {
	ap, err := netip.ParseAddrPort(s.remote())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
