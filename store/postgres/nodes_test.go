package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// twoNodes opens two stores (two pools, two listeners: two nodes) on one
// new database.
func twoNodes(t *testing.T, opts Options) (a, b *Store, dsn string) {
	t.Helper()
	dsn = pgtest.DB(t, cluster)
	opts.Node = "A"
	a = openTest(t, dsn, opts)
	opts.Node = "B"
	b = openTest(t, dsn, opts)
	return a, b, dsn
}

// changes is a subscriber that hands every change to a channel.
func changes(s *Store) chan store.Change {
	ch := make(chan store.Change, 1000)
	s.Subscribe(func(c store.Change) { ch <- c })
	return ch
}

func next(t *testing.T, ch chan store.Change) store.Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10 s")
		return store.Change{}
	}
}

func body(i int) []byte {
	return []byte(fmt.Sprintf("From: a@example.org\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i))
}

// TestTwoNodesShareUIDs: deliveries through two nodes at once get distinct,
// increasing UIDs, and both nodes see the same folder.
func TestTwoNodesShareUIDs(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	var mu sync.Mutex
	var uids []store.UID
	var wg sync.WaitGroup
	for i := range 200 {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := node.Deliver(ctx, &store.Delivery{Body: body(i), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			uids = append(uids, res.Targets[0].UID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(uids)
	if len(slices.Compact(slices.Clone(uids))) != 200 || uids[0] != 1 || uids[199] != 200 {
		t.Fatalf("UIDs %v", uids)
	}
	va, err := a.Select(ctx, store.Access{Account: "anna"}, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := b.Select(ctx, store.Access{Account: "anna"}, "INBOX", false)
	if !slices.Equal(va.UIDs, uids) || !slices.Equal(vb.UIDs, uids) || va.Info != vb.Info {
		t.Fatalf("node A sees %+v, node B %+v", va.Info, vb.Info)
	}
}

// TestTwoNodesChangeFeed: what one node commits reaches the other's
// subscribers, in order, with the UIDs and UIDVALIDITY of the commit.
func TestTwoNodesChangeFeed(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	onB := changes(b)
	res, err := a.Deliver(ctx, &store.Delivery{Body: body(1), Targets: []store.Target{{Account: "anna", Folder: "INBOX", Origin: "a's"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := next(t, onB)
	if c.Kind != store.ChangeNew || c.Account != "anna" || c.Messages[0].UID != res.Targets[0].UID || c.Origin != nil {
		t.Fatalf("change on B %+v", c)
	}
	view, _ := b.Select(ctx, store.Access{Account: "anna"}, "INBOX", false)
	if view.Info.UIDValidity != res.Targets[0].UIDValidity || view.TxID != c.TxID || c.FolderID != view.Info.ID {
		t.Fatalf("B's view %+v after change %+v", view, c)
	}
	acc := store.Access{Account: "anna", Viewer: "anna"}
	a.StoreFlags(ctx, acc, view.Info.ID, []store.UID{1}, store.FlagsAdd, []string{store.FlagDeleted})
	if c := next(t, onB); c.Kind != store.ChangeFlags || !slices.Equal(c.Messages[0].Flags, []string{store.FlagDeleted}) || c.TxID <= view.TxID {
		t.Fatalf("flags change on B %+v", c)
	}
	a.Expunge(ctx, acc, view.Info.ID, nil)
	if c := next(t, onB); c.Kind != store.ChangeExpunge || !slices.Equal(c.UIDs, []store.UID{1}) {
		t.Fatalf("expunge on B %+v", c)
	}
	a.CreateFolder(ctx, "anna", store.FolderSpec{Name: "Later"})
	if c := next(t, onB); c.Kind != store.ChangeFolders || c.Folder != "Later" {
		t.Fatalf("folder change on B %+v", c)
	}
}

// TestFeedCatchesUpAfterLostConnection: changes committed while a node's
// listener is cut off reach its subscribers once it is back, each once and
// in order.
func TestFeedCatchesUpAfterLostConnection(t *testing.T) {
	t.Parallel()
	a, b, dsn := twoNodes(t, Options{ListenRetry: 500 * time.Millisecond})
	ctx := context.Background()
	onB := changes(b)
	a.Deliver(ctx, &store.Delivery{Body: body(0), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
	next(t, onB)
	// Cut every listener of the database; A's comes back too.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var cut int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'postkasse change listener' AND datname = current_database()`).Scan(&cut)
	if err != nil || cut != 2 {
		t.Fatalf("cut %d listeners: %v", cut, err)
	}
	for i := 1; i <= 20; i++ {
		if _, err := a.Deliver(ctx, &store.Delivery{Body: body(i), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}}); err != nil {
			t.Fatal(err)
		}
	}
	for uid := store.UID(2); uid <= 21; uid++ {
		if c := next(t, onB); c.Messages[0].UID != uid {
			t.Fatalf("change for UID %d, want %d", c.Messages[0].UID, uid)
		}
	}
	if b.feed.reconnects.Load() == 0 {
		t.Fatal("B's listener never reconnected: the test did not cut it")
	}
	select {
	case c := <-onB:
		t.Fatalf("change delivered twice: %+v", c)
	default:
	}
}

// TestQueueClaims: two nodes asking at once claim disjoint sets; a dead
// node's claims pass to the other once its lease has run out, a live node
// keeps its own by renewing them.
func TestQueueClaims(t *testing.T) {
	t.Parallel()
	// A lease long enough that a loaded test machine renews it in time
	// (one that lapses is not renewed: another node may have taken it).
	a, b, dsn := twoNodes(t, Options{QueueLease: 6 * time.Second})
	ctx := context.Background()
	for i := range 20 {
		if _, err := a.Enqueue(ctx, store.NewQueuedMessage{From: "a@x", Recipients: []string{"b@y"}, Body: body(i)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Add(time.Second)
	var got [2][]store.QueuedMessage
	var wg sync.WaitGroup
	for i, node := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A node's own claims come back with every call (as the
			// runner expects), so each call asks for a few more, up to
			// half: a node that ran first must not take all 20, or the
			// other would hold none to renew below.
			for limit := 2; limit <= 10; limit += 2 {
				due, err := node.QueueDue(ctx, now, limit)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = append(got[i], due...)
			}
		}()
	}
	wg.Wait()
	seen := make(map[uint64]string)
	for i, name := range []string{"A", "B"} {
		for _, m := range got[i] {
			if other, ok := seen[m.ID]; ok && other != name {
				t.Fatalf("message %d claimed by A and B", m.ID)
			}
			seen[m.ID] = name
		}
	}
	if len(seen) != 20 {
		t.Fatalf("%d messages claimed, want 20", len(seen))
	}

	// A lives: its leases are renewed past their first end.
	var first time.Time
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	leaseOf := func(node string) (until time.Time, n int) {
		t.Helper()
		err := conn.QueryRow(ctx, `SELECT coalesce(min(lease_until), 'epoch'), count(*) FROM queue WHERE claimed_by = $1`, node).Scan(&until, &n)
		if err != nil {
			t.Fatal(err)
		}
		return until, n
	}
	first, claimedByA := leaseOf("A")
	waitFor(t, func() bool { until, _ := leaseOf("A"); return until.After(first.Add(100 * time.Millisecond)) })

	// A dies (stops renewing); B takes A's messages once A's leases end.
	a.Close()
	if due, _ := b.QueueDue(ctx, now, 0); len(due) != 20-claimedByA {
		t.Fatalf("B took %d while A's leases run, want its own %d", len(due), 20-claimedByA)
	}
	waitFor(t, func() bool { due, _ := b.QueueDue(ctx, now, 0); return len(due) == 20 })
}

// waitFor polls cond until it holds, failing after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSharedMemories: one automatic reply per sender across nodes, and one
// quota for a mailbox whichever node delivers.
func TestSharedMemories(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	now := time.Now()
	for i := range 20 {
		node := []*Store{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := node.NoteAutoReply(ctx, "anna", "x@y", "away", now, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if sent != 1 {
		t.Fatalf("%d automatic replies, want 1", sent)
	}

	const size, quota = 100, 1000
	refused := 0
	for i := range 20 {
		node := []*Store{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := node.Deliver(ctx, &store.Delivery{Body: []byte(strings.Repeat(fmt.Sprint(i%10), size)),
				Targets: []store.Target{{Account: "anna", Folder: "INBOX", Quota: quota}}})
			if err != nil {
				t.Error(err)
				return
			}
			if errors.Is(res.Targets[0].Err, store.ErrQuota) {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if u, _ := b.Usage(ctx, "anna"); u != quota || refused != 10 {
		t.Fatalf("usage %d with %d refused, want %d and 10", u, refused, quota)
	}
}

// TestPruneChanges: change records past the retention go, recent ones stay.
func TestPruneChanges(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DB(t, cluster)
	s := openTest(t, dsn, Options{ChangeRetention: time.Hour})
	ctx := context.Background()
	for i := range 3 {
		s.Deliver(ctx, &store.Delivery{Body: body(i), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
	}
	if _, err := s.pool.Exec(ctx, `UPDATE changes SET created = now() - interval '2 hours' WHERE seq < 3`); err != nil {
		t.Fatal(err)
	}
	if err := s.pruneChanges(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _ := s.pool.Query(ctx, `SELECT seq FROM changes ORDER BY seq`)
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[uint64])
	if err != nil || !slices.Equal(seqs, []uint64{3}) {
		t.Fatalf("change records left %v %v", seqs, err)
	}
}

// TestListenerPingsWhenQuiet: a quiet listener checks its connection and
// keeps it, and changes still arrive through it.
func TestListenerPingsWhenQuiet(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{listenIdle: 100 * time.Millisecond})
	onB := changes(b)
	waitFor(t, func() bool { return b.feed.pings.Load() >= 3 })
	if _, err := a.Deliver(context.Background(), &store.Delivery{Body: body(1), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}}); err != nil {
		t.Fatal(err)
	}
	if c := next(t, onB); c.Messages[0].UID != 1 {
		t.Fatalf("change %+v", c)
	}
	if n := b.feed.reconnects.Load(); n != 0 {
		t.Fatalf("%d reconnections of a healthy listener", n)
	}
}

// TestFailedWriteDoesNotPassForAnother: changes a node still holds from a
// write of its own that did not commit are not delivered for another
// node's commit that took the same sequence number.
func TestFailedWriteDoesNotPassForAnother(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	onB := changes(b)
	res, err := a.Deliver(ctx, &store.Delivery{Body: body(1), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
	if err != nil {
		t.Fatal(err)
	}
	next(t, onB)
	folder := inboxID(t, a)
	// B's write took number 2, then failed; it has not forgotten it yet.
	b.feed.hold(&txState{token: 42, groups: []*changeGroup{{key: folderKey{"anna", folder}, seq: 2,
		changes: []store.Change{{Kind: store.ChangeExpunge, Account: "anna", FolderID: folder, UIDs: []UID{res.Targets[0].UID}}}}}})
	if _, err := a.Deliver(ctx, &store.Delivery{Body: body(2), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}}); err != nil {
		t.Fatal(err)
	}
	if c := next(t, onB); c.Kind != store.ChangeNew || c.Messages[0].UID != 2 || c.TxID != 2 {
		t.Fatalf("B delivered %+v for A's commit", c)
	}
}

func inboxID(t *testing.T, s *Store) uint64 {
	t.Helper()
	f, err := s.Folder(context.Background(), "anna", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return f.ID
}
