package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"postkasse.dev/postkasse/metrics"
)

// newMetrics makes the server's counters; the queue and the store's size
// are read when Prometheus scrapes.
func newMetrics(s *server, dbPath string) *metrics.Metrics {
	return metrics.New(metrics.Options{
		Queue: func(ctx context.Context) (int, time.Time, error) {
			msgs, err := s.store.QueueList(ctx)
			var oldest time.Time
			for _, m := range msgs {
				if oldest.IsZero() || m.Created.Before(oldest) {
					oldest = m.Created
				}
			}
			return len(msgs), oldest, err
		},
		StoreSize: func() (int64, error) {
			fi, err := os.Stat(dbPath)
			if err != nil {
				return 0, err
			}
			return fi.Size(), nil
		},
	})
}

// serveMetrics serves /metrics and /healthz on ln until stopMetrics.
func (s *server) serveMetrics(ln net.Listener) {
	s.metricsHTTP = &http.Server{Handler: s.metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("listening", "service", "metrics", "addr", ln.Addr().String())
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		if err := s.metricsHTTP.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener stopped", "service", "metrics", "err", err)
		}
	}()
}

// stopMetrics closes the metrics listener: the last to go, so /healthz
// says 503 for as long as the server is stopping.
func (s *server) stopMetrics() {
	if s.metricsHTTP != nil {
		s.metricsHTTP.Close()
	}
}

// countedListener counts the connections of one listener.
type countedListener struct {
	net.Listener
	name    string
	metrics *metrics.Metrics
}

func (l countedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, done: l.metrics.Connection(l.name)}, nil
}

// countedConn counts itself closed once, however often Close is called.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.done)
	return c.Conn.Close()
}

// loginRecorder counts logins by protocol (accounts reports to it).
type loginRecorder interface {
	Login(protocol string, ok bool)
}
