package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/guard"
)

// The limits of SPEC §11: one guard counts the connections and failed
// logins of every listener together.

// newGuard builds the guard from the file. The bound on all connections
// together comes from the file-descriptor limit, so the server refuses
// connections itself (and says so) before accept starts failing.
// maxConns, when not 0, replaces that bound (tests).
func newGuard(cfg *config.Config, log *slog.Logger, maxConns int) *guard.Guard {
	fds := openFileLimit()
	if maxConns == 0 {
		maxConns = connectionBudget(fds)
	}
	if maxConns > 0 {
		log.Info("connection bound", "max_connections", maxConns, "open_file_limit", fds)
	}
	return guard.New(guard.Options{
		Limits: guardLimits(cfg), MaxConnections: maxConns, Logger: log.With("part", "limits"),
	})
}

func guardLimits(cfg *config.Config) guard.Limits {
	return guard.Limits{
		ConnectionsPerIP: cfg.Limits.ConnectionsPerIP, AuthFailures: cfg.Limits.AuthFailures,
		AuthFailuresPerIP: cfg.Limits.AuthFailuresPerIP, Trusted: cfg.Inbound.TrustedNetworks,
	}
}

// connectionBudget leaves an eighth of the descriptors (at least 256, at
// most half) for everything that is not a client connection: the store,
// listeners, the outbound queue's connections, connected accounts, DNS,
// and refusals being sent. 0 (no bound) when the limit is unknown.
func connectionBudget(fds uint64) int {
	if fds == 0 {
		return 0
	}
	reserve := min(max(fds/8, 256), fds/2)
	return int(min(fds-reserve, 1<<30))
}

// refuseSMTP and refuseIMAP tell a connection past a limit why, before it
// is closed (SPEC §11): 421 4.7.0 and BYE. tlsConfig is set for the
// implicit-TLS listeners, whose clients understand nothing before a
// handshake.
func refuseSMTP(hostname string, tlsConfig *tls.Config) guard.Refuser {
	return func(c net.Conn, reason error) {
		code := "421 4.7.0"
		if errors.Is(reason, guard.ErrServerFull) {
			code = "421 4.3.2"
		}
		say(c, tlsConfig, fmt.Sprintf("%s %s %s, try again later\r\n", code, hostname, capitalized(reason)))
	}
}

func refuseIMAP(tlsConfig *tls.Config) guard.Refuser {
	return func(c net.Conn, reason error) {
		say(c, tlsConfig, fmt.Sprintf("* BYE [UNAVAILABLE] %s, try again later\r\n", capitalized(reason)))
	}
}

// refuseHTTP answers a refused HTTP connection with 503 (SPEC §11).
func refuseHTTP(tlsConfig *tls.Config) guard.Refuser {
	return func(c net.Conn, _ error) {
		say(c, tlsConfig, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n")
	}
}

func say(c net.Conn, tlsConfig *tls.Config, line string) {
	if tlsConfig != nil {
		tc := tls.Server(c, tlsConfig)
		defer tc.Close()
		c = tc
	}
	io.WriteString(c, line)
}

func capitalized(err error) string {
	s := err.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
