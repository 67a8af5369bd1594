package metrics

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reading the queue's size costs in proportion to its length: a queue of at
// least bigQueue messages is read at most once per queueCacheFor, however
// often (and by however many) it is scraped.
const (
	bigQueue      = 10_000
	queueCacheFor = 5 * time.Second
	// statTimeout bounds one read of the store during a scrape.
	statTimeout = 5 * time.Second
)

// QueueStats reads the outbound queue's length and the time its oldest
// entry was queued (zero when empty).
type QueueStats func(ctx context.Context) (messages int, oldest time.Time, err error)

// WatchStore adds the gauges read from the store at scrape time: the
// queue's length and oldest entry's age, through queue, and the size of
// the store's file at path ("" for a store without one).
func (m *Metrics) WatchStore(queue QueueStats, path string) {
	m.reg.MustRegister(&storeCollector{queue: queue, path: path, now: time.Now})
}

var (
	queueMessagesDesc = prometheus.NewDesc("postkasse_queue_messages",
		"Messages on the outbound queue.", nil, nil)
	queueOldestDesc = prometheus.NewDesc("postkasse_queue_oldest_age_seconds",
		"Age of the oldest message on the outbound queue; 0 when it is empty.", nil, nil)
	storeSizeDesc = prometheus.NewDesc("postkasse_store_size_bytes",
		"Size of the store's database file (it never shrinks without compaction).", nil, nil)
)

// storeCollector reads the store when scraped.
type storeCollector struct {
	queue QueueStats
	path  string
	now   func() time.Time

	mu       sync.Mutex // serializes reads, so concurrent scrapes share one
	read     time.Time  // when cached was read
	messages int
	oldest   time.Time
}

// Describe sends the descriptions of the store's gauges.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueMessagesDesc
	ch <- queueOldestDesc
	if c.path != "" {
		ch <- storeSizeDesc
	}
}

// Collect reads the store and sends the gauges; a read that fails is
// reported as an error of the scrape, not as a zero.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.path != "" {
		if fi, err := os.Stat(c.path); err != nil {
			ch <- prometheus.NewInvalidMetric(storeSizeDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(storeSizeDesc, prometheus.GaugeValue, float64(fi.Size()))
		}
	}
	messages, oldest, err := c.queueStats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueMessagesDesc, err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(c.now().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(queueMessagesDesc, prometheus.GaugeValue, float64(messages))
	ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, age)
}

// queueStats reads the queue, or returns the last reading when the queue
// was big and that reading is recent.
func (c *storeCollector) queueStats() (int, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.messages >= bigQueue && now.Sub(c.read) < queueCacheFor {
		return c.messages, c.oldest, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), statTimeout)
	defer cancel()
	messages, oldest, err := c.queue(ctx)
	if err != nil {
		c.messages = 0 // read again next time
		return 0, time.Time{}, err
	}
	c.read, c.messages, c.oldest = now, messages, oldest
	return messages, oldest, nil
}
