package storetest

import (
	"context"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// testQueueStats: the queue's length and its oldest entry, as the metrics
// read them, follow enqueues and removals.
func testQueueStats(t *testing.T, s Backend) {
	ctx := context.Background()
	if st, err := s.QueueStats(ctx); err != nil || st.Messages != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty queue: %+v %v", st, err)
	}
	before := time.Now()
	first, err := s.Enqueue(ctx, store.NewQueuedMessage{From: "a@x", Recipients: []string{"b@y"}, Body: msg("1")})
	if err != nil {
		t.Fatal(err)
	}
	middle := time.Now()
	if _, err := s.Enqueue(ctx, store.NewQueuedMessage{From: "a@x", Recipients: []string{"c@y"}, Body: msg("2")}); err != nil {
		t.Fatal(err)
	}
	st, err := s.QueueStats(ctx)
	if err != nil || st.Messages != 2 || st.Oldest.Before(before.Truncate(time.Microsecond)) || st.Oldest.After(middle) {
		t.Fatalf("two queued: %+v %v, want the oldest in [%v, %v]", st, err, before, middle)
	}
	if err := s.QueueRemove(ctx, first[0]); err != nil {
		t.Fatal(err)
	}
	if st, err := s.QueueStats(ctx); err != nil || st.Messages != 1 || st.Oldest.Before(middle.Truncate(time.Microsecond)) {
		t.Fatalf("after removing the oldest: %+v %v", st, err)
	}
}
