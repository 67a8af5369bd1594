package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Errors an Authenticator returns.
var (
	// ErrAuthFailed: unknown user, wrong password, or an address nobody
	// logs in as (shared mailboxes, groups).
	ErrAuthFailed = errors.New("web: authentication failed")
	// ErrDAVDisabled: the user may not use address books (mail apps).
	ErrDAVDisabled = errors.New("web: address books are disabled for this mailbox")
)

// Authenticator checks HTTP logins.
type Authenticator interface {
	// Authenticate returns the id of the user with this address (primary
	// or alias) and password who may use address books.
	Authenticate(username, password string) (userID string, err error)
}

// Guard limits logins (SPEC §11): it is asked before a password is
// checked and told the outcome. The connection limits and failed-login
// blocks plug in here.
type Guard interface {
	// Allow returns an error while logins of username from client are
	// blocked.
	Allow(client netip.Addr, username string) error
	// Failed records a wrong password or unknown login.
	Failed(client netip.Addr, username string)
}

// noGuard allows everything.
type noGuard struct{}

func (noGuard) Allow(netip.Addr, string) error { return nil }
func (noGuard) Failed(netip.Addr, string)      {}

type ctxKey int

const (
	userKey ctxKey = iota
	plaintextKey
)

// allowPlaintextAuth marks requests of a listener where logins may go
// without TLS (loopback with allow_insecure_auth).
func allowPlaintextAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), plaintextKey, true)))
	})
}

// userOf returns the id of the user logged in for the request.
func userOf(ctx context.Context) string {
	id, _ := ctx.Value(userKey).(string)
	return id
}

func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a
	}
	return ap.Addr().Unmap()
}

// requireLogin lets through requests with good HTTP Basic credentials of
// a user with "dav" in apps, and only over TLS unless the listener allows
// plaintext logins.
func (s *Server) requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil && r.Context().Value(plaintextKey) == nil {
			http.Error(w, "Logins need HTTPS.", http.StatusForbidden)
			return
		}
		username, password, ok := r.BasicAuth()
		if !ok {
			challenge(w)
			return
		}
		id, err := s.login(r, username, password)
		if err != nil {
			if errors.Is(err, ErrDAVDisabled) {
				http.Error(w, "Address books are disabled for this mailbox.", http.StatusForbidden)
				return
			}
			challenge(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, id)))
	})
}

// login checks credentials through the guard; a refusal waits
// AuthFailureDelay, as IMAP and SMTP do.
func (s *Server) login(r *http.Request, username, password string) (string, error) {
	client := clientAddr(r)
	log := s.log.With("remote", r.RemoteAddr, "username", username)
	if err := s.opts.Guard.Allow(client, username); err != nil {
		s.recordLogin(err, true)
		log.Info("http login refused", "reason", err.Error())
		return "", ErrAuthFailed
	}
	id, err := s.opts.Auth.Authenticate(username, password)
	s.recordLogin(err, false)
	if err != nil {
		s.opts.Guard.Failed(client, username)
		log.Info("http login refused", "reason", err.Error())
		if d := s.opts.AuthFailureDelay; d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
		}
		return "", err
	}
	log.Debug("http login", "user", id)
	return id, nil
}

func challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="postkasse", charset="UTF-8"`)
	http.Error(w, "Log in with your mail address and password.", http.StatusUnauthorized)
}
