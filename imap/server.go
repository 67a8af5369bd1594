// Package imap serves postkasse's mail over IMAP4rev1 and IMAP4rev2 with
// go-imap's server. It maps IMAP names to accounts and folders (the
// personal namespace and the "Shared/" namespace of other users), enforces
// each user's rights on every command, owns sequence numbers, and feeds the
// store's change feed into go-imap's trackers so IDLE sees every change.
//
// It knows nothing of TOML or SMTP: who may log in and what they may reach
// comes through the Directory interface.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postkasse.dev/postkasse/store"
)

// Errors a Directory returns from Login.
var (
	// ErrLoginFailed: unknown user, wrong password, or a mailbox that
	// cannot log in.
	ErrLoginFailed = errors.New("imap: login failed")
	// ErrIMAPDisabled: the user may not use IMAP (mail apps).
	ErrIMAPDisabled = errors.New("imap: IMAP is disabled for this mailbox")
)

// User is a person who logged in.
type User struct {
	ID      string
	Address string
}

// Mailbox is a mailbox as one user may reach it.
type Mailbox struct {
	ID          string
	Address     string
	ReadOnly    bool // "read" rights: look, read and search only
	SeenPerUser bool
	Quota       int64 // bytes; 0 means unlimited
}

// Directory answers who may log in and what they may reach. It is consulted
// on every command, so a reloaded configuration takes effect at once.
type Directory interface {
	// Login checks a user's password; username is a primary address or an
	// alias.
	Login(username, password string) (User, error)
	// Own returns the user's own mailbox.
	Own(userID string) (Mailbox, bool)
	// Mailbox returns the mailbox with the given address (primary or
	// alias) as the user may reach it; false when they hold no right on it.
	Mailbox(userID, address string) (Mailbox, bool)
	// Access returns the user's current access to a mailbox by id.
	Access(userID, mailboxID string) (Mailbox, bool)
	// Shared lists the shared mailboxes the user may reach, by address.
	Shared(userID string) []Mailbox
}

// Options configure a Server.
type Options struct {
	Store     Store
	Directory Directory
	Logger    *slog.Logger
	// TLSConfig enables STARTTLS; nil disables it.
	TLSConfig *tls.Config
	// ImplicitTLSConfig is what ServeTLS uses; nil = TLSConfig. It lets
	// implicit TLS work while STARTTLS is not offered (an ACME certificate
	// still to come).
	ImplicitTLSConfig *tls.Config
	// InsecureAuth allows LOGIN and AUTHENTICATE without TLS on loopback
	// listeners; elsewhere authentication always needs TLS.
	InsecureAuth bool
	// AppendLimit is the largest message APPEND accepts, in bytes.
	AppendLimit uint32
	// AuthFailureDelay is how long a refused login waits before its NO,
	// to slow down password guessing (as Dovecot's auth_failure_delay).
	AuthFailureDelay time.Duration
	// Guard, when set, refuses logins from addresses that failed too
	// often and is told of every wrong password.
	Guard LoginGuard
	// Debug, when set, receives a raw protocol trace (it includes
	// credentials: for debugging only).
	Debug io.Writer
	// Metrics, when set, counts logins.
	Metrics Metrics
}

// Server is an IMAP server over a store.
type Server struct {
	opts Options
	log  *slog.Logger
	hub  *hub

	mu       sync.Mutex
	sessions map[*session]struct{}
	servers  []*imapserver.Server
	ctx      context.Context
	cancel   context.CancelFunc
	// refreshed is closed when the refresh of old message caches ended.
	refreshed chan struct{}
	// sendBuffers are the output buffers the connections borrow.
	sendBuffers *sendBuffers
}

// New creates a server. Call Serve for each listener and Close at the end.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Directory == nil {
		return nil, fmt.Errorf("imap: Store and Directory are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		sendBuffers: newSendBuffers(),
		opts:        opts, log: log, sessions: make(map[*session]struct{}),
		ctx: ctx, cancel: cancel,
	}
	s.hub = newHub(opts.Store, log)
	s.refreshed = make(chan struct{})
	go s.refreshCaches()
	return s, nil
}

// refreshTag names the cache version RefreshMeta brings messages to.
const refreshTag = "imap-cache-3"

// refreshBatch is how many messages one refresh commit rewrites: small, so
// deliveries waiting for the store's writer wait little.
const refreshBatch = 128

// refreshCaches gives the messages cached before the current version (a
// version 2 cache, which holds the search data in every copy) a new cache,
// and bodies stored without search data theirs, in the background. Until
// then SEARCH reads a version 2 cache's search data, or the message in
// full, so nothing is missed meanwhile; a restart continues where it
// stopped.
func (s *Server) refreshCaches() {
	defer close(s.refreshed)
	stale := func(meta []byte) bool { return len(meta) == 0 || meta[0] != cacheVersion }
	start := time.Now()
	err := s.opts.Store.RefreshMeta(s.ctx, refreshTag, stale, refreshBatch)
	switch {
	case err == nil:
		s.log.Info("imap: message caches up to date", "took", time.Since(start))
	case s.ctx.Err() == nil && !errors.Is(err, store.ErrClosed):
		s.log.Warn("imap: refresh message caches", "err", err)
	}
}

// capabilities is the list of SPEC §6.
func capabilities() goimap.CapSet {
	return goimap.CapSet{
		goimap.CapIMAP4rev1: {}, goimap.CapIMAP4rev2: {},
		goimap.CapNamespace: {}, goimap.CapUIDPlus: {}, goimap.CapMove: {},
		goimap.CapSpecialUse: {}, goimap.CapListExtended: {}, goimap.CapListStatus: {},
		goimap.CapStatusSize: {}, goimap.CapLiteralPlus: {}, goimap.CapESearch: {},
		goimap.CapSearchRes: {}, goimap.CapChildren: {}, goimap.CapUnauthenticate: {},
	}
}

// Serve accepts IMAP connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(coalescingListener{ln, s.sendBuffers}, s.opts.TLSConfig, s.opts.InsecureAuth && isLoopback(ln.Addr()))
}

// ServeSTARTTLS is Serve offering STARTTLS with config, whatever
// Options.TLSConfig says: for a certificate that arrived after the server
// was built (ACME).
func (s *Server) ServeSTARTTLS(ln net.Listener, config *tls.Config) error {
	return s.serve(coalescingListener{ln, s.sendBuffers}, config, s.opts.InsecureAuth && isLoopback(ln.Addr()))
}

// ServeTLS accepts implicit-TLS connections (imaps, port 993) on ln.
func (s *Server) ServeTLS(ln net.Listener) error {
	config := s.opts.ImplicitTLSConfig
	if config == nil {
		config = s.opts.TLSConfig
	}
	if config == nil {
		return fmt.Errorf("imap: implicit TLS needs a TLS configuration")
	}
	// go-imap takes a connection for TLS only if it is a *tls.Conn, which
	// the wireConn above it is not: the listener is TLS, so authentication
	// is allowed, and there is no STARTTLS to offer.
	return s.serve(tls.NewListener(coalescingListener{ln, s.sendBuffers}, config), nil, true)
}

func (s *Server) serve(ln net.Listener, startTLS *tls.Config, insecureAuth bool) error {
	ln = wireListener{ln, int64(s.opts.AppendLimit)}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return s.newSession(c), nil, nil
		},
		Caps:         capabilities(),
		Logger:       slogPrintf{s.log},
		TLSConfig:    startTLS,
		InsecureAuth: insecureAuth,
		DebugWriter:  s.opts.Debug,
	})
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// Close says BYE to every session and stops every listener.
func (s *Server) Close() error {
	s.mu.Lock()
	s.cancel()
	servers := s.servers
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.conn.Bye("Server shutting down")
	}
	var errs []error
	for _, srv := range servers {
		if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.hub.close()
	<-s.refreshed
	return errors.Join(errs...)
}

// Revalidate checks every open session against the directory (after a
// reload): a session whose user lost access to the mailbox it works in is
// ended with BYE, so it is not left reading.
func (s *Server) Revalidate() {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		if reason := sess.lostAccess(); reason != "" {
			s.log.Info("imap session ended", "user", sess.userAddress(), "reason", reason)
			sess.conn.Bye(reason)
		}
	}
}

func (s *Server) track(sess *session, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.sessions[sess] = struct{}{}
	} else {
		delete(s.sessions, sess)
	}
}

// slogPrintf bridges go-imap's logger to slog.
type slogPrintf struct{ log *slog.Logger }

// Printf logs at WARN, except a connection the client or shutdown closed
// under a command, or one wireConn ended, which is routine.
func (l slogPrintf) Printf(format string, args ...any) {
	level := slog.LevelWarn
	for _, a := range args {
		if err, ok := a.(error); ok && (errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
			isWireError(err)) {
			level = slog.LevelDebug
		}
	}
	l.log.Log(context.Background(), level, "imap server", "msg", fmt.Sprintf(format, args...))
}
