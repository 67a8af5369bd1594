package main

import (
	"context"
	"crypto/tls"

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
