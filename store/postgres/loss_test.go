package postgres

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// TestDatabaseLossAndReturn: while the database is down, writes fail (so
// nothing is acknowledged) without hanging; once it is back, the same open
// stores work again by themselves, nothing committed before is lost, and
// the other node's listener catches up.
func TestDatabaseLossAndReturn(t *testing.T) {
	t.Parallel()
	cl := pgtest.Own(t)
	dsn := pgtest.DB(t, cl)
	a := openTest(t, dsn, Options{Node: "A", ListenRetry: 200 * time.Millisecond})
	b := openTest(t, dsn, Options{Node: "B", ListenRetry: 200 * time.Millisecond})
	onB := changes(b)
	ctx := context.Background()
	deliverTo := func(i int) (*store.DeliveryResult, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return a.Deliver(ctx, &store.Delivery{Body: body(i), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
	}
	for i := range 5 {
		if _, err := deliverTo(i); err != nil {
			t.Fatal(err)
		}
		next(t, onB)
	}

	if err := cl.Halt(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := deliverTo(99); err == nil || time.Since(start) > 9*time.Second {
		t.Fatalf("delivery with the database down: %v after %v", err, time.Since(start))
	}
	if _, err := b.Select(ctx, store.Access{Account: "anna"}, "INBOX", false); err == nil {
		t.Fatal("select with the database down succeeded")
	}

	if err := cl.Resume(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	var res *store.DeliveryResult
	waitFor(t, func() bool {
		var err error
		res, err = deliverTo(5)
		return err == nil
	})
	if res.Targets[0].UID != 6 {
		t.Fatalf("first delivery after the return got UID %d, want 6", res.Targets[0].UID)
	}
	if c := next(t, onB); c.Messages[0].UID != 6 {
		t.Fatalf("B's first change after the return %+v", c)
	}
	t.Logf("working again %v after the database returned", time.Since(back))
	view, err := b.Select(ctx, store.Access{Account: "anna"}, "INBOX", false)
	if err != nil || !slices.Equal(view.UIDs, []store.UID{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("after the return: %v %v", view.UIDs, err)
	}
}

// TestTxTimeoutOnSilentDatabase: with the database's processes stopped
// (it neither answers nor refuses), reads, writes and the quota check at
// RCPT (one statement outside a transaction, on a connection idle in the
// pool) give up after TxTimeout with store.ErrUnavailable, under a caller's
// context without a deadline, as the protocols' are, and work again once
// the database goes on.
func TestTxTimeoutOnSilentDatabase(t *testing.T) {
	t.Parallel()
	cl := pgtest.Own(t)
	dsn := pgtest.DB(t, cl)
	const bound = time.Second
	s := openTest(t, dsn, Options{Node: "A", TxTimeout: bound})
	// Before the store is closed (a failure may leave a call waiting on
	// the database) and the database dropped.
	t.Cleanup(func() { cl.Thaw() })
	ctx := context.Background()
	deliver := func(i int) error {
		_, err := s.Deliver(ctx, &store.Delivery{Body: body(i), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
		return err
	}
	checkRoom := func() error { return s.CheckRoom(ctx, "anna", 1<<20, 100) }
	if err := deliver(0); err != nil {
		t.Fatal(err)
	}
	if err := checkRoom(); err != nil { // leaves its connection idle in the pool
		t.Fatal(err)
	}
	if err := cl.Freeze(); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"check room", checkRoom},
		{"deliver", func() error { return deliver(1) }},
		{"select", func() error {
			_, err := s.Select(ctx, store.Access{Account: "anna"}, "INBOX", false)
			return err
		}},
		{"size", func() error {
			_, err := s.Size(ctx)
			return err
		}},
	} {
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- op.run() }()
		select {
		case err := <-done:
			if took := time.Since(start); !errors.Is(err, store.ErrUnavailable) || took > 5*bound {
				t.Fatalf("%s on a silent database: %v after %v, want store.ErrUnavailable after about %v", op.name, err, took, bound)
			}
		case <-time.After(15 * bound):
			// Past the connect timeout too: it waits for the database.
			t.Fatalf("%s on a silent database: no answer after %v, want store.ErrUnavailable after about %v", op.name, time.Since(start), bound)
		}
	}
	if err := cl.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return deliver(2) == nil && checkRoom() == nil })
}
