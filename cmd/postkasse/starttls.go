package main

import (
	"errors"
	"net"
	"sync"
	"time"
)

// go-smtp and go-imap offer STARTTLS when the server was built with a TLS
// configuration, and read it on every connection without a lock, so it
// cannot be switched on in a running server. With ACME and no certificate
// yet, the STARTTLS listeners are therefore served through a relay: one
// goroutine accepts on the socket and hands each connection to the
// server in force. When the first certificate arrives, offerSTARTTLS
// builds servers that offer it and lets them take over the same sockets;
// the servers built without it stop accepting, and their sessions go on.

// heldListener is a STARTTLS listener waiting for a certificate.
type heldListener struct {
	name     string
	insecure bool
	socket   net.Listener
	conns    chan net.Conn
	stop     chan struct{} // closed at shutdown: nobody accepts any more
	current  *chanListener
}

// holdForSTARTTLS returns ln, or a relay from it when STARTTLS on this
// listener waits for the first ACME certificate.
func (s *server) holdForSTARTTLS(name string, ln net.Listener, insecure bool) net.Listener {
	if s.acme == nil || s.acmeStartTLS.Load() || (name != "smtp" && name != "submission" && name != "imap") {
		return ln
	}
	h := &heldListener{name: name, insecure: insecure, socket: ln, conns: make(chan net.Conn), stop: make(chan struct{})}
	h.current = newChanListener(h.conns, ln.Addr())
	s.mu.Lock()
	s.held = append(s.held, h)
	s.mu.Unlock()
	go s.relay(h)
	return h.current
}

// relay accepts on the socket until it is closed.
func (s *server) relay(h *heldListener) {
	defer close(h.conns)
	for {
		c, err := h.socket.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and the like: wait, as net/http does.
			s.log.Warn("accept", "service", h.name, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case h.conns <- c:
		case <-h.stop:
			c.Close()
			return
		}
	}
}

// offerSTARTTLS is called once the first ACME certificate is in hand.
func (s *server) offerSTARTTLS() {
	s.acmeStartTLS.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || len(s.held) == 0 {
		return
	}
	for _, h := range s.held {
		next := newChanListener(h.conns, h.socket.Addr())
		serve := func(ln net.Listener) error { return s.imap.ServeSTARTTLS(ln, s.acme.TLSConfig()) }
		if h.name != "imap" {
			s.smtp[h.name+" (before the certificate)"] = s.smtp[h.name]
			srv, err := s.smtpServer(h.name, h.insecure)
			if err != nil {
				s.log.Error("cannot offer STARTTLS", "service", h.name, "err", err)
				continue
			}
			serve = srv.Serve
		}
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if err := serve(next); err != nil {
				s.log.Error("listener stopped", "service", h.name, "err", err)
			}
		}()
		// A server stopped before its Serve got going trips go-imap's
		// listener WaitGroup (Add after Wait); stop waits for s.mu, so
		// waiting here for the first Accept rules that out.
		select {
		case <-next.accepting:
		case <-time.After(5 * time.Second):
		}
		h.current.Close()
		h.current = next
	}
	s.log.Info("certificate obtained: STARTTLS offered", "services", len(s.held))
}

// closeHeld closes the sockets behind the relays, at shutdown.
func (s *server) closeHeld() {
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	for _, h := range held {
		close(h.stop)
		h.socket.Close()
	}
}

// chanListener is a net.Listener fed by a relay; closing it ends only
// its own accepting, not the socket.
type chanListener struct {
	conns     <-chan net.Conn
	addr      net.Addr
	closed    chan struct{}
	once      sync.Once
	accepting chan struct{} // closed at the first Accept: the server runs
	started   sync.Once
}

func newChanListener(conns <-chan net.Conn, addr net.Addr) *chanListener {
	return &chanListener{conns: conns, addr: addr, closed: make(chan struct{}), accepting: make(chan struct{})}
}

// Accept returns the next relayed connection, or net.ErrClosed.
func (l *chanListener) Accept() (net.Conn, error) {
	l.started.Do(func() { close(l.accepting) })
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	case c, ok := <-l.conns:
		if !ok {
			return nil, net.ErrClosed
		}
		return c, nil
	}
}

// Close ends this listener's accepting; the socket stays open.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the socket's address.
func (l *chanListener) Addr() net.Addr { return l.addr }
