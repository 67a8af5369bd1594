package metrics

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Service records what one listener's server does: messages received and
// refused (SMTP), logins and failed logins. It satisfies smtp.Metrics and
// imap.Metrics.
type Service struct {
	received, loggedIn prometheus.Counter
	refused, failures  *prometheus.CounterVec // curried: reason only
}

// Service returns the recorder of the listener with this name ("smtp",
// "submission", "submissions", "imap", "imaps", "http", "https"). Logins
// and connections are counted by protocol: submission and submissions
// are "submission", imaps is "imap", https is "http".
func (m *Metrics) Service(listener string) *Service {
	protocol := protocolOf(listener)
	return &Service{
		received: m.received.WithLabelValues(oneOf(listener, listeners)),
		loggedIn: m.logins.WithLabelValues(protocol),
		refused:  m.refused.MustCurryWith(prometheus.Labels{"listener": oneOf(listener, listeners)}),
		failures: m.loginFailures.MustCurryWith(prometheus.Labels{"protocol": protocol}),
	}
}

// Received counts a message accepted with 250.
func (s *Service) Received() { s.received.Inc() }

// Refused counts a refusal; reason is one of RefusalReasons.
func (s *Service) Refused(reason string) {
	s.refused.WithLabelValues(oneOf(reason, refusalReasons)).Inc()
}

// LoggedIn counts a successful login.
func (s *Service) LoggedIn() { s.loggedIn.Inc() }

// LoginFailed counts a refused login; reason is "credentials",
// "blocked", "refused" or "other".
func (s *Service) LoginFailed(reason string) {
	s.failures.WithLabelValues(oneOf(reason, loginFailureReasons)).Inc()
}

func protocolOf(listener string) string {
	switch listener {
	case "submissions":
		return "submission"
	case "imaps":
		return "imap"
	case "https":
		return "http"
	}
	return oneOf(listener, protocols)
}

// Listener counts the connections ln accepts, and those open, under the
// protocol of the listener with this name (see Service). Wrap it around
// the connection guard's listener, so that connections refused over a
// limit are not counted.
func (m *Metrics) Listener(ln net.Listener, listener string) net.Listener {
	protocol := protocolOf(listener)
	return &countingListener{Listener: ln, total: m.connections.WithLabelValues(protocol), open: m.open.WithLabelValues(protocol)}
}

type countingListener struct {
	net.Listener
	total prometheus.Counter
	open  prometheus.Gauge
}

// Accept counts the next connection.
func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.total.Inc()
	l.open.Inc()
	return &countedConn{Conn: c, open: l.open}, nil
}

// countedConn leaves the open count when closed, once.
type countedConn struct {
	net.Conn
	open prometheus.Gauge
	once sync.Once
}

// Close closes the connection and counts it closed.
func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.open.Dec)
	return err
}

// NetConn is the connection underneath, for code that looks for a TCP
// connection.
func (c *countedConn) NetConn() net.Conn { return c.Conn }
