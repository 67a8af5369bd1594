package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postkasse.dev/postkasse/certs"
	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/connected"
	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/dkim"
	"postkasse.dev/postkasse/guard"
	"postkasse.dev/postkasse/imap"
	"postkasse.dev/postkasse/mailauth"
	"postkasse.dev/postkasse/metrics"
	"postkasse.dev/postkasse/password"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/queue"
	"postkasse.dev/postkasse/resolver"
	"postkasse.dev/postkasse/smtp"
	"postkasse.dev/postkasse/srs"
	"postkasse.dev/postkasse/web"
)

// server is one running postkasse: the store, the directory in force, and
// every listener's protocol server.
type server struct {
	log      *slog.Logger
	cfg      atomic.Pointer[config.Config]
	dir      atomic.Pointer[policy.Directory]
	cert     atomic.Pointer[tls.Certificate]
	store    storeBackend
	accounts *accounts
	agent    *delivery.Agent
	queue    *queue.Runner
	imap     *imap.Server
	smtp     map[string]*smtp.Server // by listener name
	pull     *connected.Runner
	guard    *guard.Guard
	web      *web.Server        // nil without an HTTP listener
	dns      *resolver.Resolver // every DNS lookup of the server
	checks   atomic.Pointer[mailauth.Checker]
	metrics  *metrics.Metrics

	// acme serves certificates from [tls.acme]; acmeStartTLS: STARTTLS is
	// offered (a certificate is in hand).
	acme         *certs.Manager
	acmeStartTLS atomic.Bool

	mu       sync.Mutex      // guards smtp (after serve), held and stopping
	held     []*heldListener // STARTTLS listeners waiting for a certificate
	stopping bool

	authFailureDelay      time.Duration
	trusted               func(net.IP) bool
	unknownRecipientDelay time.Duration
	// smtpTimeouts are serverOptions' smtpCommandTimeout and
	// smtpTransactionTimeout.
	smtpTimeouts [2]time.Duration

	queueDone chan struct{}
	cancel    context.CancelFunc
	serving   sync.WaitGroup
}

// storeTxTimeout bounds each transaction of a PostgreSQL store while
// serving (SPEC §13): a database that hangs, or that the network cuts
// off, gets try-again-later answers (SMTP 451, IMAP NO) after this long
// instead of clients waiting for it. It is far above any transaction's
// time on a working database.
const storeTxTimeout = 30 * time.Second

// serverOptions are settings that are not in the file: tests shorten the
// queue's waits and point it at their own DNS server and port.
type serverOptions struct {
	queuePort int
	debug     bool
	// authFailureDelay holds back the answer to a refused login.
	authFailureDelay time.Duration
	// smtpCommandTimeout and smtpTransactionTimeout replace the SMTP
	// deadlines (0: smtp's defaults), so tests need not wait minutes.
	smtpCommandTimeout, smtpTransactionTimeout time.Duration
	// maxConnections replaces the bound on all connections together,
	// which is otherwise taken from the open-file limit.
	maxConnections int
	// trusted says which clients are exempt from limits; nil: loopback.
	trusted func(net.IP) bool
	// unknownRecipientDelay slows answers to harvesting; 0: one second.
	unknownRecipientDelay time.Duration
	// queueLease is how long a PostgreSQL queue claim holds without
	// renewal (0: the store's default); tests of a dead node shorten it.
	queueLease time.Duration
	// storeTxTimeout replaces storeTxTimeout, for tests of a hanging
	// database.
	storeTxTimeout time.Duration
	// metrics counts what the server does; nil: a new one, served nowhere.
	metrics *metrics.Metrics
	// dnsTimeout bounds each DNS lookup; 0 is resolver.DefaultTimeout.
	dnsTimeout time.Duration
	// acmeRoots verify the ACME directory (nil: the system's roots);
	// acmeRetry is the first wait after a failure (0: 10s);
	// acmeRenewBefore, how long before expiry to renew (0: autocert's).
	acmeRoots       *x509.CertPool
	acmeRetry       time.Duration
	acmeRenewBefore time.Duration
}

// refuser tells a connection past the limits why it is closed, in the
// listener's protocol; implicit-TLS listeners say it after a handshake.
func (s *server) refuser(name string) guard.Refuser {
	var implicitTLS *tls.Config
	if name == "submissions" || name == "imaps" || name == "https" {
		implicitTLS = s.implicitTLSConfig()
	}
	switch name {
	case "imap", "imaps":
		return refuseIMAP(implicitTLS)
	case "http", "https":
		return refuseHTTP(implicitTLS)
	}
	return refuseSMTP(s.cfg.Load().Hostname, implicitTLS)
}

// listenerNames are the listeners of [listen], in the order they start.
var listenerNames = []string{"smtp", "submission", "submissions", "imap", "imaps", "http", "https"}

// newServer opens the store and builds every part from cfg.
func newServer(cfg *config.Config, log *slog.Logger, opts serverOptions) (*server, error) {
	dir, err := policy.NewDirectory(directoryOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	s := &server{
		log: log, smtp: make(map[string]*smtp.Server), authFailureDelay: opts.authFailureDelay,
		trusted: opts.trusted, unknownRecipientDelay: opts.unknownRecipientDelay,
	}
	s.guard = newGuard(cfg, log, opts.maxConnections)
	if s.trusted == nil {
		s.trusted = s.guard.TrustedIP
	}
	if s.metrics = opts.metrics; s.metrics == nil {
		s.metrics = metrics.New(log)
	}
	s.smtpTimeouts = [2]time.Duration{opts.smtpCommandTimeout, opts.smtpTransactionTimeout}
	s.cfg.Store(cfg)
	s.dir.Store(dir)
	if err := s.loadCertificate(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	txTimeout := opts.storeTxTimeout
	if txTimeout == 0 {
		txTimeout = storeTxTimeout
	}
	st, err := openStoreWith(context.Background(), cfg, log, storeOptions{
		observe: s.metrics.ObserveCommit, queueLease: opts.queueLease, txTimeout: txTimeout,
	})
	if err != nil {
		return nil, err
	}
	s.store = st
	s.metrics.WatchStore(queueStats(st), st.Size)
	if err := s.build(cfg, opts); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

func (s *server) build(cfg *config.Config, opts serverOptions) error {
	secret, err := srsSecret(cfg.DataDir)
	if err != nil {
		return err
	}
	if secret, err = sharedSRSSecret(context.Background(), cfg.DataDir, s.store, secret); err != nil {
		return err
	}
	if err := s.setupACME(cfg, opts); err != nil {
		return err
	}
	if s.dns, err = resolver.New(resolver.Options{Server: cfg.DNS.Resolver, Timeout: opts.dnsTimeout}); err != nil {
		return err
	}
	if err := s.setInboundChecks(cfg); err != nil {
		return err
	}
	s.accounts = &accounts{dir: &s.dir, verifier: password.NewVerifier(), store: s.store}
	bounces := &lateSubmitter{}
	signer, err := dkimSigner(cfg)
	if err != nil {
		return err
	}
	qopts := queue.Options{
		Storage: s.store, Hostname: cfg.Hostname, Smarthost: cfg.Outbound.Smarthost,
		SmarthostTLS: cfg.Outbound.SmarthostTLS, SmarthostUsername: cfg.Outbound.SmarthostUsername,
		SmarthostPassword: cfg.Outbound.SmarthostPassword, DNS: s.dns,
		Port: opts.queuePort, RetryAfter: cfg.Outbound.RetryAfter, Lifetime: cfg.Outbound.QueueLifetime,
		Bounces: bounces, Logger: s.log.With("part", "queue"), Metrics: s.metrics,
	}
	if signer != nil {
		qopts.Signer = signer
	}
	if s.queue, err = queue.New(qopts); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	s.agent, err = delivery.New(delivery.Options{
		Store: s.store, Directory: s.dir.Load, Hostname: cfg.Hostname,
		SRS: srs.New(secret, cfg.Domains[0]), Queue: s.queue, Logger: s.log.With("part", "delivery"),
		MaxRecipients: cfg.Limits.RecipientsPerMessage,
		Contacts:      web.ContactBook{Cards: s.store},
		Checks:        s.inboundChecks,
		Metrics:       s.metrics,
	})
	if err != nil {
		return err
	}
	bounces.agent = s.agent
	s.pull, err = connected.New(connected.Options{Store: s.store, Filer: s.agent, Logger: s.log.With("part", "connected")})
	if err != nil {
		return err
	}
	s.imap, err = imap.New(imap.Options{
		Store: s.store, Directory: imapDirectory{s.accounts}, Logger: s.log.With("part", "imap"),
		TLSConfig: s.tlsConfig(), ImplicitTLSConfig: s.implicitTLSConfig(), InsecureAuth: cfg.TLS.AllowInsecureAuth,
		AppendLimit: uint32(min(cfg.Limits.MessageSize, 1<<32-1)), Debug: debugWriter(opts.debug),
		AuthFailureDelay: opts.authFailureDelay, Guard: s.guard, Metrics: s.metrics.Service("imap"),
	})
	return err
}

// lateSubmitter lets the queue send bounces through the delivery agent,
// which itself needs the queue: the agent is set once both exist.
type lateSubmitter struct{ agent *delivery.Agent }

func (l *lateSubmitter) Submit(ctx context.Context, from string, to []string, msg []byte, kind string) error {
	return l.agent.Submit(ctx, from, to, msg, kind)
}

// serve starts every listener in lns (by name), the queue and the connected
// accounts, and returns at once; stop ends them.
func (s *server) serve(lns map[string]net.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.queueDone = make(chan struct{})
	go func() {
		defer close(s.queueDone)
		if err := s.queue.Run(ctx); err != nil {
			s.log.Error("queue stopped", "err", err)
		}
	}()
	cfg := s.cfg.Load()
	s.pull.Set(connectedAccounts(cfg))
	if err := s.buildWeb(lns); err != nil {
		return err
	}
	for _, name := range listenerNames {
		ln := lns[name]
		if ln == nil {
			continue
		}
		insecure := cfg.TLS.AllowInsecureAuth && isLoopback(ln.Addr())
		// The guard sits on the socket, below a STARTTLS relay (which
		// hands connections to servers built later) and below TLS.
		ln = proxyListen(ln, s.proxyPeers, s.log) // below the guard: it counts the client, not the balancer
		ln = s.guard.Listener(ln, s.refuser(name))
		ln = s.metrics.Listener(ln, name)
		ln = s.holdForSTARTTLS(name, ln, insecure)
		var serve func(net.Listener) error
		switch name {
		case "imap":
			serve = s.imap.Serve
		case "imaps":
			serve = s.imap.ServeTLS
		case "http":
			serve = func(ln net.Listener) error { return s.web.Serve(ln, nil, insecure) }
		case "https":
			// Plain HTTP/1.1 over TLS; the ACME configuration adds the
			// TLS-ALPN-01 challenge protocol.
			tlsConfig := s.implicitTLSConfig("http/1.1")
			serve = func(ln net.Listener) error { return s.web.Serve(ln, tlsConfig, false) }
		default:
			srv, err := s.smtpServer(name, insecure)
			if err != nil {
				return err
			}
			serve = srv.Serve
			if name == "submissions" {
				serve = srv.ServeTLS
			}
		}
		if name == "smtp" {
			// The MX port offers no AUTH at all.
			s.log.Info("listening", "service", name, "addr", ln.Addr().String())
		} else {
			s.log.Info("listening", "service", name, "addr", ln.Addr().String(), "plaintext_auth", insecure)
		}
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if err := serve(ln); err != nil {
				s.log.Error("listener stopped", "service", name, "err", err)
			}
		}()
	}
	if s.acme != nil {
		// After the listeners: a certificate arriving switches their
		// STARTTLS on (offerSTARTTLS).
		go s.acme.Run(ctx)
	}
	s.metrics.SetState(metrics.Serving)
	return nil
}

func (s *server) smtpServer(name string, insecure bool) (*smtp.Server, error) {
	cfg := s.cfg.Load()
	tlsConfig := s.tlsConfig()
	if name == "submissions" {
		tlsConfig = s.implicitTLSConfig()
	}
	srv, err := smtp.New(smtp.Options{
		Hostname: cfg.Hostname, Agent: s.agent,
		Auth: s.accounts, Submission: name != "smtp", MaxMessageBytes: cfg.Limits.MessageSize,
		MaxRecipients: max(2000, cfg.Limits.RecipientsPerMessage),
		TLSConfig:     tlsConfig, InsecureAuth: insecure, AuthFailureDelay: s.authFailureDelay,
		Trusted: s.trusted, UnknownRecipientDelay: s.unknownRecipientDelay,
		Logger: s.log.With("part", name), Guard: s.guard, Metrics: s.metrics.Service(name),
		CommandTimeout: s.smtpTimeouts[0], TransactionTimeout: s.smtpTimeouts[1],
	})
	if err != nil {
		return nil, err
	}
	s.smtp[name] = srv
	return srv, nil
}

// stop ends the listeners gracefully: SMTP transactions in flight finish
// (up to grace), IMAP sessions get BYE, the queue finishes its attempts.
// Connected accounts stop first: a message being filed is committed or
// not, and stays on the remote until it is.
func (s *server) stop(grace time.Duration) {
	s.metrics.SetState(metrics.Stopping)
	s.pull.Close()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	s.mu.Lock()
	s.stopping = true
	servers := maps.Clone(s.smtp)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for name, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				s.log.Warn("smtp shutdown", "service", name, "err", err)
			}
		}()
	}
	if s.web != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.web.Shutdown(ctx); err != nil {
				s.log.Warn("http shutdown", "err", err)
			}
		}()
	}
	wg.Wait()
	s.imap.Close()
	s.closeHeld()
	if s.cancel != nil {
		s.cancel()
		<-s.queueDone
	}
	s.serving.Wait()
	s.metrics.WatchStore(nil, nil) // scrapes from now on do not read a closed store
	if err := s.store.Close(); err != nil {
		s.log.Error("close store", "err", err)
	}
}

// reload reads the file again. A valid file swaps the directory whole; an
// invalid one is logged and changes nothing.
func (s *server) reload(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	dir, err := policy.NewDirectory(directoryOptions(cfg))
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if err := s.loadCertificate(cfg); err != nil {
		return err
	}
	if err := s.setInboundChecks(cfg); err != nil {
		return err
	}
	if later := restartOnly(s.cfg.Load(), cfg); len(later) > 0 {
		s.log.Warn("changed settings take effect at the next restart", "settings", strings.Join(later, ", "))
	}
	s.cfg.Store(cfg)
	s.dir.Store(dir)
	s.guard.SetLimits(guardLimits(cfg))
	s.imap.Revalidate()
	s.pull.Set(connectedAccounts(cfg))
	s.log.Info("configuration reloaded", "mailboxes", len(dir.Mailboxes()), "groups", len(dir.Groups()))
	return nil
}

// srsKeyPath is the file of the SRS secret in the data directory.
func srsKeyPath(dataDir string) string {
	return filepath.Join(dataDir, "srs.key")
}

// storePath is the store's file in the data directory.
func storePath(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "mail.db")
}

// restartOnly names the settings that differ between old and cfg and are
// read only when the server starts: listeners, files, the outbound queue,
// and what the protocol servers were built with. The rest (mailboxes,
// groups, quotas, certificates, connected accounts) is reloaded live.
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	for _, c := range []struct {
		name    string
		changed bool
	}{
		{"listen", old.Listen != cfg.Listen},
		{"data_dir", old.DataDir != cfg.DataDir},
		{"store", old.Store != cfg.Store},
		{"hostname", old.Hostname != cfg.Hostname},
		{"domains (the first one, which SRS addresses use)", old.Domains[0] != cfg.Domains[0]},
		{"outbound", old.Outbound != cfg.Outbound},
		{"dns", old.DNS != cfg.DNS},
		{"dkim", !slices.Equal(old.DKIM, cfg.DKIM)},
		{"limits.message_size", old.Limits.MessageSize != cfg.Limits.MessageSize},
		{"limits.recipients_per_message", old.Limits.RecipientsPerMessage != cfg.Limits.RecipientsPerMessage},
		{"tls.allow_insecure_auth", old.TLS.AllowInsecureAuth != cfg.TLS.AllowInsecureAuth},
		{"tls (a certificate added or removed)", (old.TLS.Cert == "") != (cfg.TLS.Cert == "")},
		{"tls.acme", !reflect.DeepEqual(old.TLS.ACME, cfg.TLS.ACME)},
	} {
		if c.changed {
			out = append(out, c.name)
		}
	}
	return out
}

// loadCertificate reads the TLS certificate, if any, for the next
// handshakes.
func (s *server) loadCertificate(cfg *config.Config) error {
	if cfg.TLS.Cert == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	s.cert.Store(&cert)
	return nil
}

// tlsConfig serves the current certificate for STARTTLS; nil without one.
func (s *server) tlsConfig() *tls.Config {
	if s.acme != nil {
		if s.acmeStartTLS.Load() {
			return s.acme.TLSConfig()
		}
		return nil
	}
	if s.cert.Load() == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
}

// srsSecret reads the SRS key from the data directory, making one on the
// first start.
func srsSecret(dataDir string) ([]byte, error) {
	path := srsKeyPath(dataDir)
	secret, err := os.ReadFile(path)
	if err == nil && len(secret) >= 16 {
		return secret, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("srs key: %w", err)
	}
	secret = make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		return nil, fmt.Errorf("srs key: %w", err)
	}
	return secret, nil
}

// srsCacheKey names the SRS secret among the store's cache entries.
const srsCacheKey = "srs-secret"

// sharedSRSSecret makes every node of one store sign SRS return addresses
// with one secret, since a bounce may reach any node (SPEC §13): the first
// to start puts its own in the store, the others take that one. Each
// keeps it in its data directory too, where `postkasse resolve` reads it.
func sharedSRSSecret(ctx context.Context, dataDir string, st storeBackend, own []byte) ([]byte, error) {
	shared, err := st.AddCacheEntry(ctx, srsCacheKey, own)
	if err != nil {
		return nil, fmt.Errorf("srs key: %w", err)
	}
	if !bytes.Equal(shared, own) {
		if err := os.WriteFile(srsKeyPath(dataDir), shared, 0o600); err != nil {
			return nil, fmt.Errorf("srs key: %w", err)
		}
	}
	return shared, nil
}

// dkimSigner loads the DKIM keys; nil when there are none.
func dkimSigner(cfg *config.Config) (*dkim.Signer, error) {
	if len(cfg.DKIM) == 0 {
		return nil, nil
	}
	keys := make(map[string]dkim.Key, len(cfg.DKIM))
	for _, d := range cfg.DKIM {
		key, err := dkim.LoadKey(d.Key)
		if err != nil {
			return nil, fmt.Errorf("dkim %s: %w", d.Domain, err)
		}
		keys[d.Domain] = dkim.Key{Selector: d.Selector, Signer: key}
	}
	return dkim.NewSigner(keys), nil
}

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// openListeners listens on every configured address.
func openListeners(cfg *config.Config) (map[string]net.Listener, error) {
	addrs := map[string]string{
		"smtp": cfg.Listen.SMTP, "submission": cfg.Listen.Submission, "submissions": cfg.Listen.Submissions,
		"imap": cfg.Listen.IMAP, "imaps": cfg.Listen.IMAPS,
		"http": cfg.Listen.HTTP, "https": cfg.Listen.HTTPS,
	}
	lns := make(map[string]net.Listener)
	for _, name := range listenerNames {
		if addrs[name] == "" {
			continue
		}
		ln, err := net.Listen("tcp", addrs[name])
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listen %s on %s: %w", name, addrs[name], err)
		}
		lns[name] = ln
	}
	return lns, nil
}
