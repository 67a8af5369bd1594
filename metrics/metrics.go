// Package metrics counts what the server does and serves it to Prometheus
// (/metrics) with its health (/healthz). The packages that do the work
// define the small recorder interfaces they call; *Metrics implements
// them, and main wires it in. It imports no other package of postkasse.
package metrics

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are what the scrape reads at its own time.
type Options struct {
	// Queue reports the outbound queue's length and the age of its oldest
	// message; nil leaves both out.
	Queue func(ctx context.Context) (length int, oldest time.Time, err error)
	// StoreSize reports the store's size in bytes; nil leaves it out.
	StoreSize func() (int64, error)
}

// Metrics holds the counters of one server.
type Metrics struct {
	reg         *prometheus.Registry
	serving     atomic.Bool
	delivered   *prometheus.CounterVec
	queued      prometheus.Counter
	deferred    prometheus.Counter
	bounced     prometheus.Counter
	connections *prometheus.GaugeVec
	accepted    *prometheus.CounterVec
	logins      *prometheus.CounterVec
	failed      *prometheus.CounterVec
	commits     prometheus.Histogram
}

// New makes the counters, with Go's runtime and process collectors.
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postkasse_messages_delivered_total",
		Help: "Messages delivered: into a local mailbox folder (destination=local, one per folder filed) or to a remote server (destination=remote, one per recipient).",
	}, []string{"destination"})
	m.queued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "postkasse_messages_queued_total", Help: "Messages put on the outbound queue.",
	})
	m.deferred = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "postkasse_messages_deferred_total", Help: "Outbound recipients whose delivery attempt failed temporarily (retried later).",
	})
	m.bounced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "postkasse_messages_bounced_total", Help: "Outbound recipients that failed for good (the sender is notified).",
	})
	m.connections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "postkasse_connections_open", Help: "Client connections open now, by listener.",
	}, []string{"listener"})
	m.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postkasse_connections_total", Help: "Client connections accepted, by listener.",
	}, []string{"listener"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postkasse_logins_total", Help: "Successful logins, by protocol.",
	}, []string{"protocol"})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postkasse_login_failures_total", Help: "Refused logins (wrong name or password, or the protocol not allowed), by protocol.",
	}, []string{"protocol"})
	m.commits = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "postkasse_store_commit_duration_seconds",
		Help:    "Time of one durable store commit (fsync included); concurrent writes share commits.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	m.reg.MustRegister(m.delivered, m.queued, m.deferred, m.bounced, m.connections, m.accepted,
		m.logins, m.failed, m.commits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Queue != nil {
		m.reg.MustRegister(&queueCollector{stats: opts.Queue})
	}
	if opts.StoreSize != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postkasse_store_size_bytes", Help: "Size of the store's file.",
		}, func() float64 {
			n, err := opts.StoreSize()
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	return m
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !m.serving.Load() {
			http.Error(w, "starting or stopping", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("serving\n"))
	})
	return mux
}

// SetServing says whether the server serves (health 200) or is starting
// or stopping (503).
func (m *Metrics) SetServing(on bool) { m.serving.Store(on) }

// Filed counts messages filed into local folders.
func (m *Metrics) Filed(n int) { m.delivered.WithLabelValues("local").Add(float64(n)) }

// Queued counts messages put on the outbound queue.
func (m *Metrics) Queued(n int) { m.queued.Add(float64(n)) }

// Outbound counts one outbound recipient's outcome: "delivered",
// "deferred" or "bounced".
func (m *Metrics) Outbound(outcome string) {
	switch outcome {
	case "delivered":
		m.delivered.WithLabelValues("remote").Inc()
	case "deferred":
		m.deferred.Inc()
	case "bounced":
		m.bounced.Inc()
	}
}

// Commit records one store commit's duration.
func (m *Metrics) Commit(d time.Duration) { m.commits.Observe(d.Seconds()) }

// Login counts a login attempt by protocol.
func (m *Metrics) Login(protocol string, ok bool) {
	if ok {
		m.logins.WithLabelValues(protocol).Inc()
	} else {
		m.failed.WithLabelValues(protocol).Inc()
	}
}

// Connection counts a connection opened on a listener; done closes it.
func (m *Metrics) Connection(listener string) (done func()) {
	m.accepted.WithLabelValues(listener).Inc()
	g := m.connections.WithLabelValues(listener)
	g.Inc()
	return g.Dec
}

// queueCollector reads the queue's state at scrape time.
type queueCollector struct {
	stats func(ctx context.Context) (int, time.Time, error)
}

var (
	queueLength = prometheus.NewDesc("postkasse_queue_messages", "Messages on the outbound queue.", nil, nil)
	queueOldest = prometheus.NewDesc("postkasse_queue_oldest_age_seconds", "Age of the oldest message on the outbound queue; 0 when it is empty.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueLength
	ch <- queueOldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, oldest, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueLength, err)
		return
	}
	age := 0.0
	if n > 0 {
		age = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(queueLength, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(queueOldest, prometheus.GaugeValue, age)
}
