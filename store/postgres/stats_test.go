package postgres

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// TestSizeAndCommitTimes: the store's size counts the bodies it holds, and
// every write transaction is timed for the metrics.
func TestSizeAndCommitTimes(t *testing.T) {
	t.Parallel()
	var commits, total atomic.Int64
	s := openTest(t, "", Options{ObserveCommit: func(d time.Duration) {
		commits.Add(1)
		total.Add(int64(d))
	}})
	ctx := context.Background()
	before, err := s.Size(ctx)
	if err != nil || before <= 0 {
		t.Fatalf("size of an empty store: %d, %v", before, err)
	}
	commits.Store(0)
	// Random bytes do not compress, so the body takes its length in TOAST.
	body := append([]byte("Subject: big\r\n\r\n"), []byte(rand.Text())...)
	for len(body) < 512<<10 {
		body = append(body, rand.Text()...)
	}
	if _, err := s.Deliver(ctx, &store.Delivery{Body: body, Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}}); err != nil {
		t.Fatal(err)
	}
	after, err := s.Size(ctx)
	if err != nil || after-before < int64(len(body))/2 {
		t.Errorf("size %d after a %d-byte body, %d before (%v)", after, len(body), before, err)
	}
	if commits.Load() != 1 || total.Load() <= 0 {
		t.Errorf("observed %d commits taking %v for one delivery, want 1 taking some time", commits.Load(), time.Duration(total.Load()))
	}
}
