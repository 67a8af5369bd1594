// Package guard applies the limits of SPEC §11 to every listener of the
// server together: how many connections one client address may hold open,
// how many the whole server holds (kept below the file-descriptor limit),
// and how many failed logins an address and a (login, address) pair may
// make before their logins are refused for a while. Addresses inside the
// trusted networks are exempt from all of it.
//
// One Guard serves every protocol: a listener is wrapped with Listener,
// and a login handler asks Allow before it checks a password and reports
// Failed when the password was wrong. It knows nothing of SMTP, IMAP,
// HTTP or TOML.
//
// Decisions where the SPEC is silent:
//   - An IPv6 client is counted by its /64 prefix: one host usually holds
//     a whole /64, so counting single addresses would limit nothing.
//   - Failed logins are counted in windows of Window (10 minutes) that
//     open at the first failure; the limit-th failure inside a window
//     blocks for Block (15 minutes) from that moment. A refused attempt
//     during a block is not counted, so a block does not grow.
//   - Memory is bounded: connection counts exist only while connections
//     are open, and at most MaxEntries login records are kept per table;
//     past that, a record is dropped to make room, one that blocks nothing
//     where possible (a flood of failures from many addresses costs its
//     own counts before anyone's block).
package guard

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The durations of SPEC §11.
const (
	// Window is how long failed logins are counted.
	Window = 10 * time.Minute
	// Block is how long logins are refused once a limit is reached.
	Block = 15 * time.Minute
)

// MaxEntries bounds each table of failed logins (pairs and addresses).
const MaxEntries = 1 << 16

// Refusals, as Admit, Listener and Allow report them.
var (
	// ErrAddressBusy: the client address holds ConnectionsPerIP connections.
	ErrAddressBusy = errors.New("too many connections from your address")
	// ErrServerFull: the server holds MaxConnections connections.
	ErrServerFull = errors.New("too many connections")
	// ErrBlocked: too many failed logins from this address, or of this
	// login from this address.
	ErrBlocked = errors.New("too many failed logins")
)

// Limits are the values of the configuration file; a reload may change
// them. Zero means no limit.
type Limits struct {
	ConnectionsPerIP  int
	AuthFailures      int // per (login, address)
	AuthFailuresPerIP int
	// Trusted addresses are exempt from every limit.
	Trusted []netip.Prefix
}

// Options configure a Guard.
type Options struct {
	Limits
	// MaxConnections bounds the connections of all listeners together, so
	// the server stops at its own limit before the file-descriptor limit
	// stops it. Trusted addresses count here too. Zero means no bound.
	MaxConnections int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Guard keeps the counts. It is safe for concurrent use.
type Guard struct {
	now      func() time.Time
	log      *slog.Logger
	maxConns int
	// refusing is a semaphore of refused connections being told why.
	refusing chan struct{}

	mu     sync.Mutex
	limits Limits
	conns  connCounts
	logins loginTables
}

// New makes a Guard.
func New(opts Options) *Guard {
	g := &Guard{now: opts.Now, log: opts.Logger, maxConns: opts.MaxConnections, refusing: make(chan struct{}, maxRefusing)}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.limits = copyLimits(opts.Limits)
	g.conns.byAddr = make(map[netip.Addr]*addrConns)
	g.logins = newLoginTables()
	return g
}

// SetLimits replaces the limits (after a reload). Connections already
// open stay open; blocks already in force keep their end.
func (g *Guard) SetLimits(l Limits) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limits = copyLimits(l)
}

func copyLimits(l Limits) Limits {
	l.Trusted = slices.Clone(l.Trusted)
	return l
}

// TrustedIP reports whether ip is in the trusted networks, exempt from
// every limit (the smtp package's form of the question).
func (g *Guard) TrustedIP(ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.trusted(addr.Unmap())
}

// trusted reports whether addr is exempt; g.mu is held.
func (g *Guard) trusted(addr netip.Addr) bool {
	for _, p := range g.limits.Trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ClientAddr is the address of a connection's peer, as the Guard wants
// it; the zero Addr when a is not an IP address.
func ClientAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// key is what an address is counted by: itself, or its /64 for IPv6.
func key(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}
