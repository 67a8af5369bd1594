package guard

import (
	"net/netip"
	"strings"
	"time"
)

// loginTables are the failed logins; guarded by Guard.mu.
type loginTables struct {
	pairs     map[pair]*failures
	addrs     map[netip.Addr]*failures
	lastSweep time.Time
}

type pair struct {
	login string // lower case
	addr  netip.Addr
}

// failures counts one window and remembers a block.
type failures struct {
	start   time.Time // when the window opened
	count   int
	blocked time.Time // logins refused until then; zero when not blocked
}

func newLoginTables() loginTables {
	return loginTables{pairs: make(map[pair]*failures), addrs: make(map[netip.Addr]*failures)}
}

// Allow reports whether a login of login from addr may be tried: nil, or
// ErrBlocked while that pair or that address is blocked. Call it before
// checking the password, so a block refuses the right password too.
func (g *Guard) Allow(addr netip.Addr, login string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !addr.IsValid() || g.trusted(addr) {
		return nil
	}
	now := g.now()
	k := key(addr)
	if f := g.logins.addrs[k]; f != nil && now.Before(f.blocked) {
		return ErrBlocked
	}
	if f := g.logins.pairs[pair{normalize(login), k}]; f != nil && now.Before(f.blocked) {
		return ErrBlocked
	}
	return nil
}

// Failed records a wrong password (or unknown login) of login from addr.
// The failure that reaches a limit starts a block, which is logged.
func (g *Guard) Failed(addr netip.Addr, login string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !addr.IsValid() || g.trusted(addr) {
		return
	}
	now := g.now()
	g.sweep(now)
	k := key(addr)
	login = normalize(login)
	if limit := g.limits.AuthFailuresPerIP; limit > 0 {
		f := lookup(g.logins.addrs, k, now)
		if f.add(now, limit) {
			g.log.Warn("logins blocked: too many failed logins from this address",
				"remote", addr.String(), "failures", f.count, "until", f.blocked.UTC().Format(time.RFC3339))
		}
	}
	if limit := g.limits.AuthFailures; limit > 0 {
		f := lookup(g.logins.pairs, pair{login, k}, now)
		if f.add(now, limit) {
			g.log.Warn("logins blocked: too many failed logins of this name from this address",
				"remote", addr.String(), "username", login, "failures", f.count, "until", f.blocked.UTC().Format(time.RFC3339))
		}
	}
}

// add counts a failure at now and reports whether it started a block.
func (f *failures) add(now time.Time, limit int) bool {
	if now.Before(f.blocked) {
		return false
	}
	if f.count == 0 || now.Sub(f.start) >= Window {
		f.start, f.count = now, 0
	}
	f.count++
	if f.count < limit {
		return false
	}
	f.blocked = now.Add(Block)
	f.count = 0
	return true
}

// expired reports whether f no longer counts anything at now.
func (f *failures) expired(now time.Time) bool {
	return !now.Before(f.blocked) && (f.count == 0 || now.Sub(f.start) >= Window)
}

// lookup finds or makes the record of k, keeping the table within
// MaxEntries.
func lookup[K comparable](m map[K]*failures, k K, now time.Time) *failures {
	if f := m[k]; f != nil {
		return f
	}
	if len(m) >= MaxEntries {
		evict(m, now)
	}
	f := &failures{}
	m[k] = f
	return f
}

// evict drops one record: one that blocks nothing if the first few looked
// at include one, else any, so the table never grows past MaxEntries.
func evict[K comparable](m map[K]*failures, now time.Time) {
	var fallback K
	seen := 0
	for k, f := range m {
		if !now.Before(f.blocked) {
			delete(m, k)
			return
		}
		if seen == 0 {
			fallback = k
		}
		if seen++; seen == 16 {
			break
		}
	}
	delete(m, fallback)
}

// sweepEvery is how often expired records are dropped: a full pass over
// the tables, so not on every failure.
const sweepEvery = time.Minute

func (g *Guard) sweep(now time.Time) {
	if now.Sub(g.logins.lastSweep) < sweepEvery {
		return
	}
	g.logins.lastSweep = now
	for k, f := range g.logins.pairs {
		if f.expired(now) {
			delete(g.logins.pairs, k)
		}
	}
	for k, f := range g.logins.addrs {
		if f.expired(now) {
			delete(g.logins.addrs, k)
		}
	}
}

// Records is the number of failed-login records kept (pairs and
// addresses), which stays below 2*MaxEntries.
func (g *Guard) Records() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.logins.pairs) + len(g.logins.addrs)
}

// normalize makes login names that differ only in case or surrounding
// space count as one.
func normalize(login string) string {
	return strings.ToLower(strings.TrimSpace(login))
}
