package imap

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// countingReader yields n messages with a valid cache, or stops with err
// after failAt of them.
type countingReader struct {
	n, failAt int
	err       error
	meta      []byte
}

func (r countingReader) Messages(ctx context.Context, _ store.Access, _ uint64, _ []store.UID, fn func(*store.MessageInfo) error) error {
	var info store.MessageInfo
	for i := range r.n {
		if r.err != nil && i == r.failAt {
			return r.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info = store.MessageInfo{UID: store.UID(i + 1), Meta: r.meta}
		if err := fn(&info); err != nil {
			return err
		}
	}
	return nil
}

func TestReadAheadOrderAndDecoding(t *testing.T) {
	meta := Analyze([]byte("Subject: hi\r\nFrom: a@example.org\r\n\r\nbody\r\n"))
	const n = 5*readAheadBatch + 3
	next := store.UID(1)
	err := readAhead(context.Background(), countingReader{n: n, meta: meta}, store.Access{}, 1, nil, true, func(d *decoded) error {
		if d.info.UID != next {
			t.Fatalf("got UID %d, want %d", d.info.UID, next)
		}
		if !d.cached || d.env.Subject != "hi" || d.bs == nil {
			t.Fatalf("UID %d not decoded: %+v", d.info.UID, d)
		}
		next++
		return nil
	})
	if err != nil || next != n+1 {
		t.Fatalf("readAhead: %v after %d messages", err, next-1)
	}
}

func TestReadAheadErrors(t *testing.T) {
	before := runtime.NumGoroutine()
	stop := errors.New("writer failed")
	calls := 0
	err := readAhead(context.Background(), countingReader{n: 20 * readAheadBatch}, store.Access{}, 1, nil, false, func(*decoded) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("writer error: got %v after %d calls", err, calls)
	}
	readFailed := errors.New("disk on fire")
	err = readAhead(context.Background(), countingReader{n: 10 * readAheadBatch, failAt: 2*readAheadBatch + 7, err: readFailed}, store.Access{}, 1, nil, false, func(*decoded) error { return nil })
	if !errors.Is(err, readFailed) {
		t.Fatalf("reader error: got %v", err)
	}
	// The reading goroutines have ended.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > before {
		t.Fatalf("%d goroutines left behind", got-before)
	}
}
