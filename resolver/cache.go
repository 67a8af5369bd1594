package resolver

import (
	"sync"
	"time"

	"github.com/miekg/dns"
)

type cacheKey struct {
	name  string
	qtype uint16
}

// entry is a cached answer: records, a not-found error, or the target of
// a CNAME still to be followed.
type entry struct {
	rrs     []dns.RR
	err     error
	next    string
	expires time.Time
}

// cache keeps answers until their TTL runs out. Failures (timeouts,
// SERVFAIL) are never cached: the next lookup asks again. When full, it
// drops expired entries and then arbitrary ones: a bound, not an LRU.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]entry
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[cacheKey]entry)}
}

func (c *cache) get(k cacheKey, now time.Time) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		return entry{}, false
	}
	return e, true
}

func (c *cache) put(k cacheKey, e entry, now time.Time) {
	if !now.Before(e.expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for key, old := range c.entries {
			if !now.Before(old.expires) || len(c.entries) >= c.max {
				delete(c.entries, key)
			}
		}
	}
	c.entries[k] = e
}
