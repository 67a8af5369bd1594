package imap

import (
	"net"
	"sync"
	"time"
)

// go-imap flushes its writer after every response line, which makes a
// FETCH of many messages one system call per message: half the server's
// time on a large folder. coalescingConn turns those writes into few: a
// write goes into a buffer, and one short-lived goroutine sends whatever has
// gathered while the previous send was under way. Order is kept, nothing
// waits for a timer, and an idle connection holds no goroutine.
type coalescingConn struct {
	net.Conn
	buffers *sendBuffers

	mu      sync.Mutex
	idle    *sync.Cond // signalled when a send finishes
	buf     []byte
	spare   []byte
	sending bool
	err     error
	closed  bool
}

// maxPending bounds what a connection buffers before Write waits for the
// client to take it, so a slow reader cannot make the server hoard memory.
const maxPending = 256 << 10

// keepBuffer is the largest buffer a connection keeps for reuse once its
// output has gone quiet.
const keepBuffer = 16 << 10

// sendBuffers lends buffers of maxPending bytes to connections while their
// output flows. A large FETCH fills one quickly, and growing a connection's
// own buffer to that size for every burst, then dropping it when the
// output went quiet (an idle connection must not keep it), copied each
// byte about twice more. The pool keeps memory with the connections that
// are sending, not with every connection.
type sendBuffers struct{ pool sync.Pool }

func newSendBuffers() *sendBuffers {
	return &sendBuffers{pool: sync.Pool{New: func() any { b := make([]byte, 0, maxPending); return &b }}}
}

func (b *sendBuffers) get() []byte { return (*b.pool.Get().(*[]byte))[:0] }

// put takes back a buffer that get lent; others are left to the collector.
func (b *sendBuffers) put(buf []byte) {
	if cap(buf) == maxPending {
		b.pool.Put(&buf)
	}
}

func newCoalescingConn(c net.Conn, buffers *sendBuffers) *coalescingConn {
	cc := &coalescingConn{Conn: c, buffers: buffers}
	cc.idle = sync.NewCond(&cc.mu)
	return cc
}

// Write queues p for sending; the error of an earlier send is returned by
// a later Write.
func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closed && len(c.buf) > 0 && len(c.buf)+len(p) > maxPending {
		c.idle.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.buf)+len(p) > cap(c.buf) && len(c.buf)+len(p) <= maxPending && cap(c.buf) < maxPending {
		big := append(c.buffers.get(), c.buf...)
		c.buffers.put(c.buf)
		c.buf = big
	}
	c.buf = append(c.buf, p...)
	if !c.sending {
		c.sending = true
		go c.send()
	}
	return len(p), nil
}

// send writes out the buffer until it stays empty.
func (c *coalescingConn) send() {
	c.mu.Lock()
	for len(c.buf) > 0 && c.err == nil {
		data := c.buf
		c.buf, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		_, err := c.Conn.Write(data)
		c.mu.Lock()
		if err != nil {
			c.err = err
		}
		// While output keeps coming the two buffers take turns, whatever
		// their size: growing a fresh one for every send cost more than the
		// sending.
		c.spare = data[:0]
		c.idle.Broadcast()
	}
	if cap(c.buf) > keepBuffer {
		c.buffers.put(c.buf)
		c.buf = nil
	}
	if cap(c.spare) > keepBuffer {
		c.buffers.put(c.spare)
		c.spare = nil
	}
	c.sending = false
	c.idle.Broadcast()
	c.mu.Unlock()
}

// Close sends what is buffered (a BYE, say), briefly, then closes.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.sending {
			c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		}
		for c.sending {
			c.idle.Wait()
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// coalescingListener hands out coalescing connections.
type coalescingListener struct {
	net.Listener
	buffers *sendBuffers
}

func (l coalescingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newCoalescingConn(c, l.buffers), nil
}
