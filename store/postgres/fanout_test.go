package postgres

import (
	"context"
	"fmt"
	"testing"

	"postkasse.dev/postkasse/store"
)

// TestTwoNodesFanOut: a delivery through node A to many mailboxes reaches
// node B's subscribers as one change per mailbox with A's UIDs, and B reads
// the recorded changes of the many folders in a few queries, not one per
// folder (the notifications of one commit are taken together).
func TestTwoNodesFanOut(t *testing.T) {
	t.Parallel()
	const mailboxes = 500
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	targets := make([]store.Target, mailboxes)
	for i := range targets {
		targets[i] = store.Target{Account: fmt.Sprintf("u%03d", i), Folder: "INBOX"}
	}
	onB := make(chan store.Change, 2*mailboxes)
	b.Subscribe(func(c store.Change) { onB <- c })
	for round := range 2 {
		before := b.feed.fetches.Load()
		res, err := a.Deliver(ctx, &store.Delivery{Body: body(round), Targets: targets})
		if err != nil {
			t.Fatal(err)
		}
		want := make(map[string]store.UID, mailboxes)
		for i, r := range res.Targets {
			want[targets[i].Account] = r.UID
		}
		for range mailboxes {
			c := next(t, onB)
			uid, ok := want[c.Account]
			if !ok || c.Kind != store.ChangeNew || len(c.Messages) != 1 || c.Messages[0].UID != uid || uid != store.UID(round+1) {
				t.Fatalf("round %d: change on B %+v, want one new message with UID %d (seen before: %v)", round, c, uid, !ok)
			}
			delete(want, c.Account)
		}
		if n := b.feed.fetches.Load() - before; n > mailboxes/5 {
			t.Errorf("round %d: B read the changes of %d folders in %d queries", round, mailboxes, n)
		}
	}
	select {
	case c := <-onB:
		t.Fatalf("a change more than the deliveries made: %+v", c)
	default:
	}
}
