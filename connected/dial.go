package connected

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// connect opens an IMAP connection to the account's server with its
// security: implicit TLS, STARTTLS, or none (the configuration allows that
// only to loopback hosts). The connection closes when ctx ends; the caller
// closes the client.
func (r *Runner) connect(ctx context.Context, a Account) (*imapclient.Client, error) {
	host, _, err := net.SplitHostPort(a.Host)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: r.opts.Timeout}
	raw, err := d.DialContext(ctx, "tcp", a.Host)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	conn := &deadlineConn{Conn: raw, timeout: r.opts.Timeout}
	c, err := r.client(conn, a.Security, host)
	if err != nil {
		stop()
		raw.Close()
		return nil, err
	}
	return c, nil
}

func (r *Runner) client(conn net.Conn, security, host string) (*imapclient.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.opts.TLSConfig != nil {
		tlsConfig = r.opts.TLSConfig.Clone()
	}
	tlsConfig.ServerName = host
	opts := &imapclient.Options{TLSConfig: tlsConfig}
	switch security {
	case "tls":
		tlsConfig.NextProtos = []string{"imap"}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		return imapclient.New(tc, opts), nil
	case "starttls":
		c, err := imapclient.NewStartTLS(conn, opts)
		if err != nil {
			return nil, fmt.Errorf("starttls: %w", err)
		}
		return c, nil
	case "none":
		return imapclient.New(conn, opts), nil
	}
	return nil, fmt.Errorf("unknown security %q", security)
}

// deadlineConn gives each read and write timeout to make progress, so a
// server that stops answering ends the round instead of hanging it.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}
