package imap

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestCoalescingConnKeepsOrderAndLetsGo: bursts of writes of every size
// arrive whole and in order, and once the output has gone quiet the
// connection holds no large buffer (the borrowed ones are back in the pool).
func TestCoalescingConnKeepsOrderAndLetsGo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newCoalescingConn(raw, newSendBuffers())
	var want bytes.Buffer
	for burst := range 3 {
		for i := range 2000 {
			p := bytes.Repeat([]byte{byte(burst*7 + i)}, 1+(i*37)%9000)
			want.Write(p)
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c.mu.Lock()
			quiet, bufCap, spareCap := !c.sending, cap(c.buf), cap(c.spare)
			c.mu.Unlock()
			if quiet {
				if bufCap > keepBuffer || spareCap > keepBuffer {
					t.Fatalf("a quiet connection keeps buffers of %d and %d bytes", bufCap, spareCap)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("output did not go quiet")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("received %d bytes, want %d, or out of order", len(b), want.Len())
	}
}
