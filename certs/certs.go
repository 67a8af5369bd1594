// Package certs obtains and renews the server's TLS certificates from an
// ACME directory (RFC 8555, SPEC §11 [tls.acme]) with
// golang.org/x/crypto/acme/autocert, and hands them to every TLS listener
// through tls.Config.GetCertificate.
//
// The account key and the certificates are kept in the store's cache
// entries (Cache), so they survive restarts and are shared by every node of
// one store. Challenges: TLS-ALPN-01 on any listener built from TLSConfig
// (the https listener is the one an ACME server reaches on port 443), and
// HTTP-01 through HTTPHandler on an http listener on port 80.
//
// It must not import the protocol packages or the configuration.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"postkasse.dev/postkasse/store"
)

// Store keeps named blobs durably; *store.Store implements it. A missing
// entry is an error that errors.Is store.ErrNotFound.
type Store interface {
	CacheEntry(ctx context.Context, key string) ([]byte, error)
	PutCacheEntry(ctx context.Context, key string, data []byte) error
	DeleteCacheEntry(ctx context.Context, key string) error
}

// Options configure a Manager.
type Options struct {
	Directory string   // the ACME directory URL
	Email     string   // the account's contact; may be ""
	Hosts     []string // the names certificates are for; the first is the default
	Store     Store
	// Roots verify the directory's TLS certificate; nil = the system's
	// roots (which honour SSL_CERT_FILE).
	Roots  *x509.CertPool
	Logger *slog.Logger
	// RetryMin and RetryMax bound the wait between failed attempts to get
	// a certificate (doubling); 0 = 10s and 1h.
	RetryMin, RetryMax time.Duration
	// Check is how often certificates are looked at again once obtained
	// (autocert renews them itself 30 days before expiry; this catches a
	// renewal that kept failing); 0 = 12h.
	Check time.Duration
	// RenewBefore is how long before expiry a certificate is renewed;
	// 0 = autocert's default (a third of its lifetime, at most 30 days).
	RenewBefore time.Duration
	// OnReady, if set, is called once, when a certificate is first in hand
	// for every host.
	OnReady func()
}

// Manager serves certificates and keeps them current.
type Manager struct {
	opts  Options
	m     *autocert.Manager
	log   *slog.Logger
	ready atomic.Bool
}

// New returns a Manager; Run obtains the certificates.
func New(opts Options) (*Manager, error) {
	if len(opts.Hosts) == 0 || opts.Store == nil || opts.Directory == "" {
		return nil, errors.New("certs: hosts, store and directory are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 10 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.Check <= 0 {
		opts.Check = 12 * time.Hour
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: opts.Roots, MinVersion: tls.VersionTLS12}
	mgr := &Manager{opts: opts, log: opts.Logger.With("part", "acme")}
	mgr.m = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       cache{opts.Store},
		HostPolicy:  autocert.HostWhitelist(opts.Hosts...),
		Email:       opts.Email,
		RenewBefore: opts.RenewBefore,
		Client: &acme.Client{
			DirectoryURL: opts.Directory,
			HTTPClient:   &http.Client{Transport: transport, Timeout: time.Minute},
			UserAgent:    "postkasse",
		},
	}
	return mgr, nil
}

// Cached reports whether the store holds a certificate for every host
// that is valid now, so TLS works from the first connection without
// asking the ACME directory.
func (m *Manager) Cached(ctx context.Context) bool {
	for _, host := range m.opts.Hosts {
		// autocert keeps the key and the chain, PEM, under the host name
		// (ECDSA; "+rsa" for RSA, which obtainAll does not ask for).
		data, err := m.opts.Store.CacheEntry(ctx, cacheKey(host))
		if err != nil {
			return false
		}
		cert, err := tls.X509KeyPair(data, data)
		if err != nil || cert.Leaf == nil || time.Now().After(cert.Leaf.NotAfter) || cert.Leaf.VerifyHostname(host) != nil {
			return false
		}
	}
	return true
}

// Ready reports whether a certificate is in hand for every host.
func (m *Manager) Ready() bool { return m.ready.Load() }

// GetCertificate returns the certificate for the name the client asked
// for; a client that names no host or another one gets the first host's
// (it will judge the name itself). ACME's TLS-ALPN-01 challenges are
// answered as well.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !slices.Contains(hello.SupportedProtos, acme.ALPNProto) && !slices.Contains(m.opts.Hosts, hello.ServerName) {
		h := *hello
		h.ServerName = m.opts.Hosts[0]
		hello = &h
	}
	return m.m.GetCertificate(hello)
}

// TLSConfig returns a server configuration that serves the certificates
// and answers TLS-ALPN-01 challenges; protos are the listener's own ALPN
// protocols (e.g. "h2", "http/1.1"), if any.
func (m *Manager) TLSConfig(protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: m.GetCertificate,
		NextProtos:     append(slices.Clone(protos), acme.ALPNProto),
	}
}

// HTTPHandler answers HTTP-01 challenges on an http listener on port 80
// and passes every other request to fallback (nil: a redirect to https).
func (m *Manager) HTTPHandler(fallback http.Handler) http.Handler {
	return m.m.HTTPHandler(fallback)
}

// Run gets a certificate for every host, retrying failures with backoff,
// and then looks at them every Check interval until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	wait := m.opts.RetryMin
	announced := false
	for {
		err := m.obtainAll()
		m.ready.Store(err == nil)
		if err == nil && !announced && m.opts.OnReady != nil {
			m.opts.OnReady()
		}
		announced = announced || err == nil
		next := m.opts.Check
		if err != nil {
			m.log.Error("no certificate yet; trying again", "err", err, "in", wait)
			next, wait = wait, min(2*wait, m.opts.RetryMax)
		} else {
			wait = m.opts.RetryMin
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// obtainAll asks autocert for each host's certificate: from memory or the
// store when it has a valid one, else from the ACME directory.
func (m *Manager) obtainAll() error {
	var errs []error
	for _, host := range m.opts.Hosts {
		// A hello that supports ECDSA, as every current client does, so the
		// certificate obtained here is the one clients will get.
		hello := &tls.ClientHelloInfo{ServerName: host, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
		cert, err := m.m.GetCertificate(hello)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		if !m.ready.Load() && cert.Leaf != nil {
			m.log.Info("certificate in hand", "host", host, "issuer", cert.Leaf.Issuer.CommonName, "not_after", cert.Leaf.NotAfter)
		}
	}
	return errors.Join(errs...)
}

// cache is autocert's view of the store.
type cache struct{ s Store }

// Get returns autocert.ErrCacheMiss for a missing entry, as autocert wants.
func (c cache) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := c.s.CacheEntry(ctx, cacheKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil, autocert.ErrCacheMiss
	}
	return data, err
}

// Put stores an entry durably.
func (c cache) Put(ctx context.Context, key string, data []byte) error {
	return c.s.PutCacheEntry(ctx, cacheKey(key), data)
}

// Delete removes an entry.
func (c cache) Delete(ctx context.Context, key string) error {
	return c.s.DeleteCacheEntry(ctx, cacheKey(key))
}

// cacheKey names autocert's entries among the store's cache entries.
func cacheKey(key string) string { return "acme/" + key }
