package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reading the queue's size costs in proportion to its length (4 ms for
// 100,000 messages): a queue of at least bigQueue messages is read at most
// once per queueCacheFor, however often (and by however many) it is
// scraped.
const (
	bigQueue      = 10_000
	queueCacheFor = 5 * time.Second
	// statTimeout bounds one read of the store during a scrape.
	statTimeout = 5 * time.Second
)

// QueueStats reads the outbound queue's length and the time its oldest
// entry was queued (zero when empty).
type QueueStats func(ctx context.Context) (messages int, oldest time.Time, err error)

// StoreSize reads how many bytes the store takes.
type StoreSize func(ctx context.Context) (int64, error)

// WatchStore sets where the gauges read at scrape time come from: the
// queue's length and oldest entry's age, through queue, and the store's
// size, through size (nil: no size gauge). Until it is called, or after
// WatchStore(nil, nil), they are left out.
func (m *Metrics) WatchStore(queue QueueStats, size StoreSize) {
	m.store.mu.Lock()
	defer m.store.mu.Unlock()
	m.store.queue, m.store.size = queue, size
	m.store.messages = 0 // forget a reading of another store
}

// storeCollector reads the store when scraped.
type storeCollector struct {
	now                                func() time.Time
	messagesDesc, oldestDesc, sizeDesc *prometheus.Desc

	mu       sync.Mutex // serializes reads, so concurrent scrapes share one
	queue    QueueStats // nil: no store to read
	size     StoreSize
	read     time.Time // when messages and oldest were read
	messages int
	oldest   time.Time
}

func newStoreCollector(now func() time.Time) *storeCollector {
	return &storeCollector{
		now: now,
		messagesDesc: prometheus.NewDesc("postkasse_queue_messages",
			"Messages on the outbound queue.", nil, nil),
		oldestDesc: prometheus.NewDesc("postkasse_queue_oldest_age_seconds",
			"Age of the oldest message on the outbound queue; 0 when it is empty.", nil, nil),
		sizeDesc: prometheus.NewDesc("postkasse_store_size_bytes",
			"Size of the store: the bbolt database file (it never shrinks without compaction), or the PostgreSQL store's tables with their indexes.", nil, nil),
	}
}

// Describe sends the descriptions of the store's gauges.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messagesDesc
	ch <- c.oldestDesc
	ch <- c.sizeDesc
}

// Collect reads the store and sends the gauges; a read that fails is
// reported as an error of the scrape, not as a zero.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queue == nil {
		return
	}
	if c.size != nil {
		ctx, cancel := context.WithTimeout(context.Background(), statTimeout)
		size, err := c.size(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.sizeDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(c.sizeDesc, prometheus.GaugeValue, float64(size))
		}
	}
	messages, oldest, err := c.queueStats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.messagesDesc, err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(c.now().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.messagesDesc, prometheus.GaugeValue, float64(messages))
	ch <- prometheus.MustNewConstMetric(c.oldestDesc, prometheus.GaugeValue, age)
}

// queueStats reads the queue, or returns the last reading when the queue
// was big and that reading is recent. The caller holds c.mu.
func (c *storeCollector) queueStats() (int, time.Time, error) {
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
