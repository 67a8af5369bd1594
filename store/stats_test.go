package store

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestObserveCommit: every durable write is reported with its duration.
func TestObserveCommit(t *testing.T) {
	t.Parallel()
	var commits, total atomic.Int64
	s, err := Open(context.Background(), Options{
		Path: filepath.Join(t.TempDir(), "mail.db"),
		ObserveCommit: func(d time.Duration) {
			commits.Add(1)
			total.Add(int64(d))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Enqueue(context.Background(), NewQueuedMessage{From: "a@example.org", Recipients: []string{"b@example.net"}, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if commits.Load() != 1 || total.Load() <= 0 {
		t.Fatalf("observed %d commits taking %v, want 1 taking some time", commits.Load(), time.Duration(total.Load()))
	}
}

// BenchmarkQueueStats reads the size of a queue of 100,000 messages, as a
// scrape of /metrics does.
func BenchmarkQueueStats(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	batch := make([]NewQueuedMessage, 1000)
	for i := range batch {
		batch[i] = NewQueuedMessage{From: "a@example.org", Recipients: []string{"b@example.net"}, Body: make([]byte, 2000)}
	}
	for range 100 {
		if _, err := s.Enqueue(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if st, err := s.QueueStats(ctx); err != nil || st.Messages != 100_000 {
			b.Fatalf("%+v %v", st, err)
		}
	}
}
