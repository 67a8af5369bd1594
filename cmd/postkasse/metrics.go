package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"postkasse.dev/postkasse/metrics"
)

// startMetrics serves /metrics and /healthz on addr ("": not at all) and
// returns the function that stops it. It starts before the store is
// opened, so that /healthz says 503 while the server starts.
func startMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics on %s: %w", addr, err)
	}
	return serveMetrics(ln, m, log), nil
}

// serveMetrics serves m's handler on ln until stop is called. There is no
// login: the address is for the admin's tools only (SPEC §12).
func serveMetrics(ln net.Listener, m *metrics.Metrics, log *slog.Logger) (stop func()) {
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("listening", "service", "metrics", "addr", ln.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("listener stopped", "service", "metrics", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}
}

// queueStats reads the queue's size for the metrics.
func queueStats(st storeBackend) metrics.QueueStats {
	return func(ctx context.Context) (int, time.Time, error) {
		qs, err := st.QueueStats(ctx)
		return qs.Messages, qs.Oldest, err
	}
}
