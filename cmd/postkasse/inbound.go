package main

import (
	"fmt"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/mailauth"
)

// setInboundChecks builds the checks of mail from other servers (SPEC §11)
// from cfg's [inbound] switches, with the server's resolver, and puts them
// in force. A reload calls it again: building one is cheap.
func (s *server) setInboundChecks(cfg *config.Config) error {
	c, err := mailauth.New(mailauth.Options{
		Hostname: cfg.Hostname, Resolver: s.dns,
		// Asked on every check, so it follows reloads of the domains.
		OwnDomain: func(d string) bool { return s.dir.Load().IsLocalDomain(d) },
		SPF:       cfg.Inbound.SPF, DKIM: cfg.Inbound.DKIM, DMARC: cfg.Inbound.DMARC,
	})
	if err != nil {
		return fmt.Errorf("inbound checks: %w", err)
	}
	s.checks.Store(c)
	return nil
}

// inboundChecks returns the checks in force, for delivery.Options.Checks.
func (s *server) inboundChecks() delivery.Checker {
	if c := s.checks.Load(); c != nil {
		return c
	}
	return nil // not a nil *mailauth.Checker inside a non-nil interface
}
