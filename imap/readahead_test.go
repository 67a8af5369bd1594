package imap

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// countingReader holds messages with UIDs 1 to n, each with the cache
// meta and a text of bodySize bytes; reading the record of UID failAt+1
// fails with err, and UIDs in gone have no text.
type countingReader struct {
	n, failAt int
	err       error
	meta      []byte
	bodySize  int
	gone      map[store.UID]bool
}

func (r countingReader) Messages(ctx context.Context, _ store.Access, _ uint64, uids []store.UID, fn func(*store.MessageInfo) error) error {
	var info store.MessageInfo
	for _, uid := range uids {
		if r.err != nil && int(uid) == r.failAt+1 {
			return r.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if int(uid) > r.n {
			continue
		}
		info = store.MessageInfo{UID: uid, Meta: r.meta, Size: int64(r.bodySize)}
		if err := fn(&info); err != nil {
			return err
		}
	}
	return nil
}

func (r countingReader) Bodies(_ context.Context, _ store.Access, _ uint64, uids []store.UID, fn func(store.UID, []byte) error) error {
	for _, uid := range uids {
		if r.gone[uid] {
			continue
		}
		if err := fn(uid, bytes.Repeat([]byte{byte(uid)}, r.bodySize)); err != nil {
			return err
		}
	}
	return nil
}

// upTo returns the UIDs 1 to n.
func upTo(n int) []store.UID {
	uids := make([]store.UID, n)
	for i := range uids {
		uids[i] = store.UID(i + 1)
	}
	return uids
}

func TestReadAheadOrderAndDecoding(t *testing.T) {
	meta := Analyze([]byte("Subject: hi\r\nFrom: a@example.org\r\n\r\nbody\r\n"))
	const n = 5*readAheadBatch + 3
	next := store.UID(1)
	err := readAhead(context.Background(), countingReader{n: n, meta: meta}, store.Access{}, 1, upTo(n), readPlan{decode: true}, func(d *decoded) error {
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
	err := readAhead(context.Background(), countingReader{n: 20 * readAheadBatch}, store.Access{}, 1, upTo(20*readAheadBatch), readPlan{}, func(*decoded) error {
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
	err = readAhead(context.Background(), countingReader{n: 10 * readAheadBatch, failAt: 2*readAheadBatch + 7, err: readFailed}, store.Access{}, 1, upTo(10*readAheadBatch), readPlan{}, func(*decoded) error { return nil })
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

// TestReadAheadBodies: the text of the picked messages comes with them, in
// order; one expunged meanwhile is marked gone; and a batch of large
// messages is handed over in parts that stay under readAheadBytes.
func TestReadAheadBodies(t *testing.T) {
	const n, size = 3 * readAheadBatch, 64 << 10
	r := countingReader{n: n, bodySize: size, gone: map[store.UID]bool{7: true}}
	pick := func(d *decoded) bool { return d.info.UID%2 == 1 }
	out := make(chan []decoded, n)
	if err := readBatches(context.Background(), r, store.Access{}, 1, upTo(n), readPlan{body: pick}, out); err != nil {
		t.Fatal(err)
	}
	close(out)
	next := store.UID(1)
	batches := 0
	for batch := range out {
		batches++
		text := 0
		for _, d := range batch {
			if d.info.UID != next {
				t.Fatalf("got UID %d, want %d", d.info.UID, next)
			}
			next++
			text += len(d.body)
			switch {
			case d.info.UID == 7:
				if !d.gone || d.body != nil {
					t.Fatalf("UID 7: gone %v, %d bytes", d.gone, len(d.body))
				}
			case d.info.UID%2 == 1:
				if len(d.body) != size || d.body[0] != byte(d.info.UID) {
					t.Fatalf("UID %d: %d bytes", d.info.UID, len(d.body))
				}
			default:
				if d.body != nil || d.gone {
					t.Fatalf("UID %d was not picked but has text", d.info.UID)
				}
			}
		}
		if text > readAheadBytes {
			t.Fatalf("a batch holds %d bytes of text, bound %d", text, readAheadBytes)
		}
	}
	if next != n+1 {
		t.Fatalf("%d messages, want %d", next-1, n)
	}
	if want := (n / 2) * size / readAheadBytes; batches < want {
		t.Fatalf("%d batches, want at least %d", batches, want)
	}
}
