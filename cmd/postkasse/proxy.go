package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyHeaderTimeout bounds the wait for a balancer's PROXY header, which
// a balancer sends as soon as it connects.
const proxyHeaderTimeout = 5 * time.Second

// proxyPeers are the balancers of listen.proxy_protocol in force.
func (s *server) proxyPeers() []netip.Prefix { return s.cfg.Load().ProxyProtocol }

// proxyPolicy is the policy of listen.proxy_protocol: a connection from a
// listed balancer must open with a PROXY header (v1 or v2), whose client
// address replaces the balancer's; any other connection is passed on
// untouched, so a header from elsewhere is never parsed (it reaches the
// protocol as a line of garbage). peers is read per connection, so a
// reload changes the list at once.
func proxyPolicy(peers func() []netip.Prefix) proxyproto.ConnPolicyFunc {
	return func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
		ap, err := netip.ParseAddrPort(o.Upstream.String())
		if err != nil {
			return proxyproto.SKIP, nil
		}
		for _, p := range peers() {
			if p.Contains(ap.Addr().Unmap()) {
				return proxyproto.REQUIRE, nil
			}
		}
		return proxyproto.SKIP, nil
	}
}

// proxyListener reads the PROXY header of a balancer's connection before
// Accept returns it, so that everything above (the guard's limits, TLS,
// the protocols) sees the client's address. Each header is read on its own
// goroutine: a slow balancer connection holds up no other.
type proxyListener struct {
	net.Listener // the socket's; Accept is proxyproto's over it
	pp           *proxyproto.Listener
	log          *slog.Logger

	accepted chan acceptResult
	done     chan struct{} // closed by Close
	stopped  chan struct{} // closed when the accept loop has returned

	// Accept and Close meet under mu, as they do in a socket's descriptor
	// lock: a server that starts serving and is closed at once (go-imap's
	// WaitGroup) relies on Accept being ordered before Close.
	mu     sync.Mutex
	closed bool
}

type acceptResult struct {
	c   net.Conn
	err error
}

// proxyListen wraps ln (the socket) for listen.proxy_protocol.
func proxyListen(ln net.Listener, peers func() []netip.Prefix, log *slog.Logger) net.Listener {
	l := &proxyListener{
		Listener: ln,
		pp:       &proxyproto.Listener{Listener: ln, ConnPolicy: proxyPolicy(peers), ReadHeaderTimeout: proxyHeaderTimeout},
		log:      log, accepted: make(chan acceptResult),
		done: make(chan struct{}), stopped: make(chan struct{}),
	}
	go l.run()
	return l
}

// run accepts until the socket is closed. Accept errors go up one by one,
// so that the server above decides whether to retry, as with a socket.
func (l *proxyListener) run() {
	defer close(l.stopped)
	for {
		c, err := l.pp.Accept()
		if err != nil {
			if !l.hand(acceptResult{err: err}) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pc, ok := c.(*proxyproto.Conn)
		if !ok { // SKIP: not from a balancer
			l.hand(acceptResult{c: c})
			continue
		}
		go func() {
			// A zero-length read returns once the header is read, or with
			// why there is none (a balancer's connection must have one).
			if _, err := pc.Read(nil); err != nil {
				// No header at all is what a balancer's TCP health
				// check looks like (connect, close): not worth a warning.
				level := slog.LevelWarn
				if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
					level = slog.LevelDebug
				}
				l.log.Log(context.Background(), level, "proxy protocol: connection from a balancer refused", "balancer", pc.Raw().RemoteAddr().String(), "err", err)
				pc.Close()
				return
			}
			l.hand(acceptResult{c: pc})
		}()
	}
}

// hand gives r to Accept; false (and the connection closed) once the
// listener is closed.
func (l *proxyListener) hand(r acceptResult) bool {
	select {
	case l.accepted <- r:
		return true
	case <-l.done:
		if r.c != nil {
			r.c.Close()
		}
		return false
	}
}

// Accept returns the next connection, its address the client's.
func (l *proxyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, net.ErrClosed
	}
	select {
	case r := <-l.accepted:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.stopped:
		return nil, net.ErrClosed
	}
}

// Close closes the socket; connections whose header is still being read
// are closed as they finish.
func (l *proxyListener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	return l.Listener.Close()
}
