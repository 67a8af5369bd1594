package main

import (
	"net"

	"postkasse.dev/postkasse/web"
)

// buildWeb makes the HTTP server when there is an HTTP listener; the
// client setup files name the ports of the listeners actually open.
func (s *server) buildWeb(lns map[string]net.Listener) error {
	if lns["http"] == nil && lns["https"] == nil {
		return nil
	}
	port := func(name string) int {
		if ln := lns[name]; ln != nil {
			if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
				return tcp.Port
			}
		}
		return 0
	}
	cfg := s.cfg.Load()
	var err error
	opts := web.Options{
		Hostname: cfg.Hostname, Directory: s.dir.Load, Auth: webAuth{s.accounts}, Cards: s.store,
		Ports: web.Ports{
			IMAP: port("imap"), IMAPS: port("imaps"), Submission: port("submission"),
			Submissions: port("submissions"), HTTP: port("http"), HTTPS: port("https"),
		},
		TLS: s.cert.Load() != nil || s.acme != nil, AuthFailureDelay: s.authFailureDelay, Guard: s.guard,
		Logger: s.log.With("part", "http"), Metrics: s.metrics.Service("http"),
	}
	if s.acme != nil {
		opts.Challenge = s.acme.HTTPHandler
	}
	s.web, err = web.New(opts)
	return err
}

// webAuth adapts accounts to web.Authenticator: the mail logins of users
// with "dav" in apps.
type webAuth struct{ *accounts }

// Authenticate implements web.Authenticator.
func (a webAuth) Authenticate(username, pass string) (string, error) {
	mb, err := a.login(username, pass)
	if err != nil {
		return "", web.ErrAuthFailed
	}
	if !mb.DAV {
		return "", web.ErrDAVDisabled
	}
	return mb.ID, nil
}
