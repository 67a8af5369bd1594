// Package web serves postkasse's HTTP listeners: address books over
// CardDAV (RFC 6352, with go-webdav), the files mail clients read to set
// themselves up (Thunderbird autoconfig, Outlook autodiscover, Apple
// configuration profiles) and a page at / telling a person where to point
// their client. Logins are the users' mail logins, over HTTP Basic.
//
// It knows nothing of TOML, SMTP or IMAP, and no bbolt type reaches it: it
// keeps cards through the store's address-book methods.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"postkasse.dev/postkasse/policy"
)

// Timeouts of every phase of an HTTP exchange. An address book upload is
// small: a client that cannot send its headers in 10 s or its body in a
// minute is gone or hostile.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// defaultMaxCardBytes bounds one vCard (photos included); larger ones are
// refused with 413.
const defaultMaxCardBytes = 1 << 20

// maxRequestBytes bounds the other request bodies (REPORT, PROPFIND,
// autodiscover): XML that says which cards a client wants.
const maxRequestBytes = 1 << 20

// Ports are the listeners clients should be told about; 0 means off.
type Ports struct {
	IMAP, IMAPS, Submission, Submissions, HTTP, HTTPS int
}

// Options configure a Server.
type Options struct {
	Hostname  string
	Directory func() *policy.Directory // the directory in force now
	Auth      Authenticator
	Cards     CardStore
	// Guard limits logins; nil allows every attempt.
	Guard Guard
	// Ports are named in client setup files and on the page.
	Ports Ports
	// TLS says the server has a certificate, so the plain IMAP and
	// submission ports offer STARTTLS.
	TLS bool
	// MaxCardBytes bounds one vCard; 0 means 1 MiB.
	MaxCardBytes int64
	// AuthFailureDelay holds back the answer to a refused login.
	AuthFailureDelay time.Duration
	// Challenge, when set, wraps the handler of plain-HTTP listeners so
	// that it answers ACME HTTP-01 challenges first.
	Challenge func(http.Handler) http.Handler
	Logger    *slog.Logger
	Now       func() time.Time // nil means time.Now
	// Metrics, when set, counts logins.
	Metrics Metrics
}

// Server is the HTTP side of postkasse: one handler tree for every HTTP
// listener.
type Server struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler

	mu      sync.Mutex
	servers []*http.Server
	closed  bool // Shutdown was called: a late Serve returns at once
}

// New creates a server.
func New(opts Options) (*Server, error) {
	if opts.Directory == nil || opts.Auth == nil || opts.Cards == nil {
		return nil, errors.New("web: Directory, Auth and Cards are required")
	}
	if opts.Guard == nil {
		opts.Guard = noGuard{}
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	if opts.MaxCardBytes <= 0 {
		opts.MaxCardBytes = defaultMaxCardBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.handler = s.routes()
	return s, nil
}

// Serve answers HTTP on ln until Shutdown. plaintextAuth allows logins
// without TLS; the caller sets it only for loopback listeners with
// allow_insecure_auth. With tlsConfig, ln speaks TLS.
func (s *Server) Serve(ln net.Listener, tlsConfig *tls.Config, plaintextAuth bool) error {
	h := s.handler
	if tlsConfig == nil && s.opts.Challenge != nil {
		h = s.opts.Challenge(h)
	}
	if plaintextAuth {
		h = allowPlaintextAuth(h)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops every listener and waits, until ctx ends, for requests
// in flight; a card being stored is committed or not, never half.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := s.servers
	s.servers, s.closed = nil, true
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	return errors.Join(errs...)
}

// routes is the one handler tree of every listener.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("/.well-known/carddav", serveCardDAVRedirect)
	// Clients given only the server's name look for their principal at /.
	mux.HandleFunc("PROPFIND /{$}", serveCardDAVRedirect)
	mux.Handle(davPrefix+"/", s.requireLogin(http.HandlerFunc(s.serveDAV)))
	mux.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", s.serveAutoconfig)
	mux.HandleFunc("GET /mail/config-v1.1.xml", s.serveAutoconfig)
	mux.HandleFunc("POST /autodiscover/autodiscover.xml", s.serveAutodiscover)
	mux.HandleFunc("POST /Autodiscover/Autodiscover.xml", s.serveAutodiscover)
	mux.Handle("GET /apple/profile.mobileconfig", s.requireLogin(http.HandlerFunc(s.serveAppleProfile)))
	return mux
}

// serveCardDAVRedirect sends clients looking for CardDAV to its root
// (RFC 6764 §5), where they find their principal once logged in.
func serveCardDAVRedirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, davPrefix+"/", http.StatusMovedPermanently)
}
