package guard

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// connCounts are the open connections; guarded by Guard.mu.
type connCounts struct {
	total  int
	byAddr map[netip.Addr]*addrConns // only addresses with connections open
	// fullLogged is set when the server-wide bound was logged, and cleared
	// once the count has fallen a tenth below it: logged once per episode.
	fullLogged bool
}

type addrConns struct {
	open   int
	logged bool // the refusal was logged; cleared when the last one closes
}

// Admit counts a new connection from addr, or refuses it with
// ErrAddressBusy or ErrServerFull. The caller calls release exactly once
// when the connection closes.
func (g *Guard) Admit(addr netip.Addr) (release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.maxConns > 0 && g.conns.total >= g.maxConns {
		if !g.conns.fullLogged {
			g.conns.fullLogged = true
			g.log.Warn("connection limit reached: refusing new connections until some close", "max_connections", g.maxConns)
		}
		return nil, ErrServerFull
	}
	exempt := !addr.IsValid() || g.trusted(addr)
	k := key(addr)
	if !exempt {
		c := g.conns.byAddr[k]
		if c == nil {
			c = &addrConns{}
			g.conns.byAddr[k] = c
		}
		if limit := g.limits.ConnectionsPerIP; limit > 0 && c.open >= limit {
			if !c.logged {
				c.logged = true
				g.log.Warn("connections refused: address at its limit", "remote", addr.String(), "connections_per_ip", limit)
			}
			return nil, ErrAddressBusy
		}
		c.open++
	}
	g.conns.total++
	var once sync.Once
	return func() { once.Do(func() { g.release(k, exempt) }) }, nil
}

func (g *Guard) release(k netip.Addr, exempt bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns.total--
	if g.conns.total < g.maxConns-g.maxConns/10 {
		g.conns.fullLogged = false
	}
	if exempt {
		return
	}
	if c := g.conns.byAddr[k]; c != nil {
		c.open--
		if c.open <= 0 {
			delete(g.conns.byAddr, k)
		}
	}
}

// Open is the number of connections open, all addresses together.
func (g *Guard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns.total
}

// refusalTimeout bounds the time a refused connection may take to be told
// so; maxRefusing bounds how many are being told at once, all listeners
// together. Past that, a refused connection is closed without a word, so
// a flood of refusals costs neither goroutines nor descriptors.
const (
	refusalTimeout = 5 * time.Second
	maxRefusing    = 64
)

// Refuser tells a refused connection why, in its protocol (421 on SMTP,
// BYE on IMAP, 503 on HTTP); reason is ErrAddressBusy or ErrServerFull.
// It runs on its own goroutine with a deadline set on c; the listener
// closes c when it returns.
type Refuser func(c net.Conn, reason error)

// Listener counts every connection ln accepts: a connection over a limit
// is handed to refuse and closed, and never returned by Accept; the others
// are released when closed.
func (g *Guard) Listener(ln net.Listener, refuse Refuser) net.Listener {
	return &listener{Listener: ln, g: g, refuse: refuse}
}

type listener struct {
	net.Listener
	g      *Guard
	refuse Refuser
}

// Accept returns the next admitted connection.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, err := l.g.Admit(ClientAddr(c.RemoteAddr()))
		if err == nil {
			return &conn{Conn: c, release: release}, nil
		}
		l.turnAway(c, err)
	}
}

func (l *listener) turnAway(c net.Conn, reason error) {
	if l.refuse == nil {
		c.Close()
		return
	}
	select {
	case l.g.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.g.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refusalTimeout))
		l.refuse(c, reason)
	}()
}

// conn releases its count when closed.
type conn struct {
	net.Conn
	release func()
}

// Close closes the connection and releases its count (once).
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// NetConn is the connection underneath, for code that looks for a TCP
// connection.
func (c *conn) NetConn() net.Conn { return c.Conn }
