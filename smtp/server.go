// Package smtp serves postkasse's SMTP listeners with go-smtp: the MX port,
// where other servers hand over mail for local recipients, and submission
// (STARTTLS or implicit TLS with AUTH), where users send mail. Each
// transaction is a delivery.Transaction, which decides under the routing
// policy; this package speaks the protocol around it and maps every
// refusal to a standard SMTP reply in one function (reply).
//
// It knows nothing of TOML, IMAP or bbolt.
package smtp

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

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/delivery"
)

// Errors an Authenticator returns.
var (
	// ErrAuthFailed: unknown user, wrong password, or a mailbox that cannot
	// log in (shared mailboxes, groups).
	ErrAuthFailed = errors.New("smtp: authentication failed")
	// ErrSMTPDisabled: the user may not use SMTP (mail apps).
	ErrSMTPDisabled = errors.New("smtp: SMTP is disabled for this mailbox")
)

// Authenticator checks submission credentials.
type Authenticator interface {
	// Authenticate returns the id of the user with this address (primary
	// or alias) and password. The forms that open a shared mailbox as an
	// account (target*member, member\target) return the member's id: the
	// session has the member's rights, so it sends as the shared mailbox
	// where those allow.
	Authenticate(username, password string) (userID string, err error)
}

// Options configure a Server.
type Options struct {
	Hostname string
	Agent    *delivery.Agent
	Auth     Authenticator // required for submission
	// Submission makes this a submission listener: every transaction needs
	// AUTH, and senders are checked against send-as rights.
	Submission      bool
	MaxMessageBytes int64
	// MaxRecipients bounds the recipients of one transaction for every
	// client, trusted or not (the agent's limit applies to the others);
	// 0 means 2000.
	MaxRecipients int
	TLSConfig     *tls.Config
	// InsecureAuth allows AUTH without TLS; the caller sets it only for
	// loopback listeners.
	InsecureAuth bool
	// AuthFailureDelay is how long a refused AUTH waits before its 535,
	// to slow down password guessing.
	AuthFailureDelay time.Duration
	// Trusted tells whether a client address is in the organisation's own
	// networks, exempt from the limits on unknown recipients (and, through
	// the agent, on recipients per message). nil trusts loopback only.
	Trusted func(net.IP) bool
	// UnknownRecipientDelay holds back each unknown-recipient answer past
	// the 20th on one connection; 0 means one second.
	UnknownRecipientDelay time.Duration

	// Guard, when set, refuses logins from addresses that failed too
	// often and is told of every wrong password.
	Guard LoginGuard
	// CommandTimeout is the wait for each command and for the next bytes
	// of a message; TransactionTimeout bounds MAIL to the end of DATA.
	// Zero means DefaultCommandTimeout and DefaultTransactionTimeout.
	CommandTimeout, TransactionTimeout time.Duration
	Logger                             *slog.Logger
	Debug                              io.Writer
	// Metrics, when set, counts messages, refusals and logins.
	Metrics Metrics
}

// Server is one SMTP listener's server.
type Server struct {
	opts Options
	log  *slog.Logger
	srv  *gosmtp.Server

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	inflight int                   // transactions between MAIL and their reply
	idle     chan struct{}         // closed when inflight drops to zero during Shutdown
	sessions map[*session]struct{} // open connections, told 421 at shutdown
	// listeners are closed by Shutdown; closing says Shutdown has begun.
	listeners []net.Listener
	closing   bool
}

// begin and end count transactions in flight, so Shutdown can let them
// finish.
func (s *Server) begin() {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
}

func (s *Server) end() {
	s.mu.Lock()
	s.inflight--
	if s.inflight == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// New creates a server.
func New(opts Options) (*Server, error) {
	if opts.Agent == nil {
		return nil, errors.New("smtp: Agent is required")
	}
	if opts.Submission && opts.Auth == nil {
		return nil, errors.New("smtp: submission needs an Authenticator")
	}
	if opts.MaxRecipients == 0 {
		opts.MaxRecipients = 2000
	}
	if opts.CommandTimeout == 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	if opts.TransactionTimeout == 0 {
		opts.TransactionTimeout = DefaultTransactionTimeout
	}
	if opts.Trusted == nil {
		opts.Trusted = net.IP.IsLoopback
	}
	if opts.UnknownRecipientDelay == 0 {
		opts.UnknownRecipientDelay = time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, log: log, ctx: ctx, cancel: cancel}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	srv.Domain = opts.Hostname
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.MaxLineLength = 4096
	srv.TLSConfig = opts.TLSConfig
	srv.AllowInsecureAuth = opts.InsecureAuth
	srv.ReadTimeout = opts.CommandTimeout
	srv.WriteTimeout = opts.CommandTimeout
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = printfLogger{log}
	srv.Debug = opts.Debug
	s.srv = srv
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(timedListener{ln, s.opts.CommandTimeout})
}

// ServeTLS accepts implicit-TLS connections (submissions, port 465) on ln.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opts.TLSConfig == nil {
		return errors.New("smtp: implicit TLS needs a TLS configuration")
	}
	return s.serve(tls.NewListener(timedListener{ln, s.opts.CommandTimeout}, s.opts.TLSConfig))
}

func (s *Server) serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	err := s.srv.Serve(ln)
	if errors.Is(err, gosmtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, lets transactions in flight
// finish until ctx ends, then closes every connection.
//
// It closes the listeners itself rather than through go-smtp's Shutdown:
// that one waits for every connection, idle ones too, and racing its
// Close (which ends the connections here) closes one channel twice and
// panics (go-smtp v0.26.0 checks and closes its done channel without a
// lock in both).
func (s *Server) Shutdown(ctx context.Context) error {
	finished := make(chan struct{})
	s.mu.Lock()
	s.closing = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	if s.inflight == 0 {
		close(finished)
	} else {
		s.idle = finished
	}
	s.mu.Unlock()
	select {
	case <-finished:
	case <-ctx.Done():
	}
	s.cancel()
	s.sayGoodbye()
	err := s.srv.Close()
	if errors.Is(err, gosmtp.ErrServerClosed) {
		err = nil
	}
	return err
}

// sayGoodbye tells every open connection 421 before it is closed (RFC
// 5321 section 3.8), so clients retry later instead of seeing a dropped
// connection. go-smtp has no way to send a reply outside a command; the
// line is written to the socket directly, at a moment when no command is
// being answered (transactions have ended or run out of time).
func (s *Server) sayGoodbye() {
	line := replyLine(s.opts.Hostname, errShuttingDown)
	var conns []net.Conn
	s.mu.Lock()
	for sess := range s.sessions {
		if nc := sess.conn.Conn(); nc != nil {
			conns = append(conns, nc)
		}
	}
	s.mu.Unlock()
	// One deadline for all: a client that reads nothing delays shutdown by
	// a second at most, however many there are.
	deadline := time.Now().Add(time.Second)
	for _, nc := range conns {
		nc.SetWriteDeadline(deadline)
	}
	for _, nc := range conns {
		io.WriteString(nc, line)
	}
}

func (s *Server) track(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = make(map[*session]struct{})
	}
	s.sessions[sess] = struct{}{}
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
}

// printfLogger bridges go-smtp's logger to slog.
type printfLogger struct{ log *slog.Logger }

// Printf logs at WARN, except a connection the client reset or closed,
// which is routine.
func (l printfLogger) Printf(format string, v ...any) {
	level := slog.LevelWarn
	for _, a := range v {
		if err, ok := a.(error); ok && (errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)) {
			level = slog.LevelDebug
		}
	}
	l.log.Log(context.Background(), level, "smtp server", "msg", fmt.Sprintf(format, v...))
}

func (l printfLogger) Println(v ...any) {
	l.log.Warn("smtp server", "msg", fmt.Sprint(v...))
}
