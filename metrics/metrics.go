// Package metrics counts what postkasse does and serves it, with the
// server's health, over HTTP for Prometheus (SPEC §12): /metrics in the
// Prometheus text format and /healthz.
//
// It is the only package that imports the Prometheus client. The protocol
// servers, the delivery agent, the queue and the store report through small
// interfaces of their own (smtp.Metrics, queue.Metrics, ...), which the
// types here satisfy; cmd/postkasse wires them together. Label values come
// from small fixed sets: a value outside its set is counted as "other", so
// a caller can never make the number of series grow (no addresses, no
// free text).
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// State is where the server stands in its life, as /healthz reports it.
type State int32

// The states of a server: /healthz answers 200 only while Serving.
const (
	Starting State = iota
	Serving
	Stopping
)

// String names the state as /healthz says it.
func (s State) String() string {
	switch s {
	case Serving:
		return "serving"
	case Stopping:
		return "stopping"
	}
	return "starting"
}

// The fixed label values; never changed.
var (
	// refusalReasons: the "reason" label of postkasse_messages_refused_total.
	refusalReasons = []string{
		"unknown_recipient", "bad_address", "quota", "size", "loop",
		"protocol", "policy", "sender_auth", "internal", "other",
	}
	// loginFailureReasons: the "reason" label of
	// postkasse_login_failures_total: a wrong password or unknown login,
	// an address blocked after failed logins, a right password for a
	// mailbox that may not log in here, or anything else.
	loginFailureReasons = []string{"credentials", "blocked", "refused", "other"}
	protocols           = []string{"smtp", "submission", "imap", "http"}
	listeners           = []string{"smtp", "submission", "submissions"}
)

// RefusalReasons are the values of the "reason" label of
// postkasse_messages_refused_total.
func RefusalReasons() []string { return slices.Clone(refusalReasons) }

// Metrics holds every counter and gauge of one server. It is safe for
// concurrent use.
type Metrics struct {
	reg   *prometheus.Registry
	log   *slog.Logger
	state atomic.Int32

	received      *prometheus.CounterVec // listener
	refused       *prometheus.CounterVec // listener, reason
	delivered     prometheus.Counter
	queued        prometheus.Counter
	sent          prometheus.Counter
	deferred      prometheus.Counter
	bounced       prometheus.Counter
	connections   *prometheus.CounterVec // protocol
	open          *prometheus.GaugeVec   // protocol
	logins        *prometheus.CounterVec // protocol
	loginFailures *prometheus.CounterVec // protocol, reason
	commits       prometheus.Histogram
	store         *storeCollector
}

// New creates the metrics of a server that is Starting, with the Go
// runtime and process collectors; log receives scrape errors (nil
// discards them).
func New(log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: log}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m.received = counterVec("postkasse_messages_received_total", "Messages accepted with 250 after DATA, by listener.", "listener")
	m.refused = counterVec("postkasse_messages_refused_total",
		"SMTP refusals (of a sender, a recipient or a message; 4xx and 5xx), by listener and reason.", "listener", "reason")
	m.delivered = counter("postkasse_messages_delivered_total", "Local copies filed into mailboxes (one per mailbox a message reached).")
	m.queued = counter("postkasse_recipients_queued_total", "Remote recipients put on the outbound queue.")
	m.sent = counter("postkasse_recipients_sent_total", "Remote recipients the outbound queue delivered.")
	m.deferred = counter("postkasse_recipients_deferred_total", "Outbound delivery attempts of one recipient that failed temporarily (retried later).")
	m.bounced = counter("postkasse_recipients_bounced_total", "Remote recipients given up on (failed permanently or expired); the sender was notified.")
	m.connections = counterVec("postkasse_connections_total", "Connections accepted (within the connection limits), by protocol.", "protocol")
	m.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "postkasse_connections_open", Help: "Connections open now, by protocol."}, []string{"protocol"})
	m.logins = counterVec("postkasse_logins_total", "Successful logins, by protocol.", "protocol")
	m.loginFailures = counterVec("postkasse_login_failures_total", "Refused logins, by protocol and reason.", "protocol", "reason")
	m.commits = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "postkasse_store_commit_duration_seconds",
		Help: "Time of each store commit (write transaction and fsync), which every 250 and IMAP change waits for.",
		// 0.5 ms to 8 s: an SSD fsync is about 1 ms, a busy disk's 100 ms.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
	})
	m.store = newStoreCollector(time.Now)
	m.reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m.store,
		m.received, m.refused, m.delivered, m.queued, m.sent, m.deferred, m.bounced,
		m.connections, m.open, m.logins, m.loginFailures, m.commits,
	)
	m.initSeries()
	return m
}

// initSeries creates every labelled series at zero, so that rate() and
// alerts see a series from the first scrape rather than from its first
// event.
func (m *Metrics) initSeries() {
	for _, l := range listeners {
		m.received.WithLabelValues(l)
		for _, r := range refusalReasons {
			m.refused.WithLabelValues(l, r)
		}
	}
	for _, p := range protocols {
		m.connections.WithLabelValues(p)
		m.open.WithLabelValues(p)
		m.logins.WithLabelValues(p)
		for _, r := range loginFailureReasons {
			m.loginFailures.WithLabelValues(p, r)
		}
	}
}

// SetState records where the server stands, for /healthz.
func (m *Metrics) SetState(s State) { m.state.Store(int32(s)) }

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		// A scrape that cannot finish in time is of no use to anyone.
		Timeout: 10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s := State(m.state.Load())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if s != Serving {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write([]byte(s.String() + "\n"))
	})
	return mux
}

// ObserveCommit records the duration of one store commit.
func (m *Metrics) ObserveCommit(d time.Duration) { m.commits.Observe(d.Seconds()) }

// Delivered counts what one delivery did: local copies filed, remote
// recipients queued.
func (m *Metrics) Delivered(copies, queued int) {
	m.delivered.Add(float64(copies))
	m.queued.Add(float64(queued))
}

// Sent counts a remote recipient the queue delivered.
func (m *Metrics) Sent() { m.sent.Inc() }

// Deferred counts a remote recipient whose attempt failed temporarily.
func (m *Metrics) Deferred() { m.deferred.Inc() }

// Bounced counts remote recipients given up on.
func (m *Metrics) Bounced(n int) { m.bounced.Add(float64(n)) }

// oneOf is v when it is in set, "other" otherwise.
func oneOf(v string, set []string) string {
	for _, s := range set {
		if s == v {
			return v
		}
	}
	return "other"
}

// errorLog bridges promhttp's error log to slog.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.Warn("metrics scrape", "err", fmt.Sprint(v...))
}
