package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"postkasse.dev/postkasse/certs"
	"postkasse.dev/postkasse/config"
)

// setupACME builds the certificate manager of [tls.acme]. STARTTLS is
// offered from the start when the store holds a valid certificate, else
// from the moment the first one arrives (see starttls.go); implicit TLS
// (imaps, submissions, https) waits for it in the handshake.
func (s *server) setupACME(cfg *config.Config, opts serverOptions) error {
	a := cfg.TLS.ACME
	if a == nil {
		return nil
	}
	mgr, err := certs.New(certs.Options{
		Directory: a.Directory, Email: a.Email, Hosts: a.Hosts, Store: s.store,
		Roots: opts.acmeRoots, Logger: s.log, RetryMin: opts.acmeRetry, RenewBefore: opts.acmeRenewBefore,
		OnReady: s.offerSTARTTLS,
	})
	if err != nil {
		return err
	}
	s.acme = mgr
	s.acmeStartTLS.Store(mgr.Cached(context.Background()))
	if !s.acmeStartTLS.Load() {
		s.log.Warn("no ACME certificate in the store yet: STARTTLS is offered once one is obtained", "hosts", a.Hosts)
	}
	return nil
}

// implicitTLSConfig is the configuration of listeners that are TLS from
// the first byte; protos are their ALPN protocols.
func (s *server) implicitTLSConfig(protos ...string) *tls.Config {
	if s.acme != nil {
		return s.acme.TLSConfig(protos...)
	}
	c := s.tlsConfig()
	if c != nil && len(protos) > 0 {
		c.NextProtos = protos
	}
	return c
}

// webServer serves the http and https listeners. Until the address books
// arrive (SPEC §10) they answer only ACME challenges: HTTP-01 on http,
// TLS-ALPN-01 on https; every other request gets 404.
func (s *server) webServer(name string) func(net.Listener) error {
	var handler http.Handler = http.NotFoundHandler()
	if name == "http" && s.acme != nil {
		handler = s.acme.HTTPHandler(handler)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	s.web = append(s.web, srv)
	if name == "http" {
		return ignoreClosed(srv.Serve)
	}
	srv.TLSConfig = s.implicitTLSConfig("h2", "http/1.1")
	return ignoreClosed(func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") })
}

func ignoreClosed(serve func(net.Listener) error) func(net.Listener) error {
	return func(ln net.Listener) error {
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// stopWeb ends the http and https listeners.
func (s *server) stopWeb(ctx context.Context) {
	for _, srv := range s.web {
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn("http shutdown", "err", err)
		}
	}
}
