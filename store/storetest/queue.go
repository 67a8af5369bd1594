package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

func testQueueAndAutoReplyMemory(t *testing.T, s Backend) {
	ctx := context.Background()
	res, err := s.Deliver(ctx, &store.Delivery{Body: msg("q"), Queue: []store.NewQueuedMessage{{From: "a@x", Recipients: []string{"b@y", "c@y"}, Body: msg("q")}}})
	if err != nil || len(res.QueueIDs) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	due, err := s.QueueDue(ctx, time.Now().Add(time.Second), 10)
	if err != nil || len(due) != 1 || len(due[0].Recipients) != 2 || due[0].ID != res.QueueIDs[0] {
		t.Fatalf("due %+v %v", due, err)
	}
	m := due[0]
	m.Recipients[0].State = store.RecipientDelivered
	m.NextAttempt = time.Now().Add(time.Hour)
	if err := s.QueueUpdate(ctx, m); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.QueueDue(ctx, time.Now(), 10); len(due) != 0 {
		t.Fatalf("due after update: %d", len(due))
	}
	if got, err := s.QueueGet(ctx, m.ID); err != nil || got.Recipients[0].State != store.RecipientDelivered || !got.NextAttempt.Equal(m.NextAttempt) {
		t.Fatalf("after update %+v %v", got, err)
	}
	m.Recipients[1].State = store.RecipientFailed
	if err := s.QueueUpdate(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueBody(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("body after done: %v", err)
	}
	if err := s.QueueUpdate(ctx, m); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a finished message: %v", err)
	}
	now := time.Now()
	for i, want := range []bool{true, false} {
		ok, err := s.NoteAutoReply(ctx, "anna", "X@Y", "k1", now.Add(time.Duration(i)*time.Hour), 7*24*time.Hour)
		if err != nil || ok != want {
			t.Fatalf("note %d: %v %v", i, ok, err)
		}
	}
	if ok, _ := s.NoteAutoReply(ctx, "anna", "x@y", "k2", now, 7*24*time.Hour); !ok {
		t.Fatal("new text should reply again")
	}
	if ok, _ := s.NoteAutoReply(ctx, "bo", "x@y", "k1", now, 7*24*time.Hour); !ok {
		t.Fatal("another mailbox should reply too")
	}
	if ok, _ := s.NoteAutoReply(ctx, "anna", "x@y", "k1", now.Add(8*24*time.Hour), 7*24*time.Hour); !ok {
		t.Fatal("after the window a reply is due again")
	}
}

// testQueueOperations: listing, due order and limit, bodies, removal.
func testQueueOperations(t *testing.T, s Backend) {
	ctx := context.Background()
	ids, err := s.Enqueue(ctx,
		store.NewQueuedMessage{From: "a@x", Recipients: []string{"b@y"}, Body: []byte("one"), Kind: "dsn"},
		store.NewQueuedMessage{From: "a@x", Body: []byte("no recipients: not queued")},
		store.NewQueuedMessage{From: "", Recipients: []string{"c@y"}, Body: []byte("two")},
		store.NewQueuedMessage{From: "a@x", Recipients: []string{"d@y"}, Body: []byte("three")},
	)
	if err != nil || len(ids) != 3 || !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("enqueue %v %v", ids, err)
	}
	list, err := s.QueueList(ctx)
	if err != nil || len(list) != 3 || list[0].ID != ids[0] || list[0].Kind != "dsn" || list[1].From != "" {
		t.Fatalf("list %+v %v", list, err)
	}
	if b, err := s.QueueBody(ctx, ids[1]); err != nil || string(b) != "two" {
		t.Fatalf("body %q %v", b, err)
	}
	// The first message waits longest once the others are put back.
	later := time.Now().Add(time.Minute)
	for _, m := range list[1:] {
		m.Attempts++
		m.NextAttempt = later
		m.LastError = "try later"
		if err := s.QueueUpdate(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	due, err := s.QueueDue(ctx, later, 2)
	if err != nil || len(due) != 2 || due[0].ID != ids[0] || due[1].ID != ids[1] || due[1].Attempts != 1 || due[1].LastError != "try later" {
		t.Fatalf("due %+v %v", due, err)
	}
	if due, _ := s.QueueDue(ctx, later.Add(-time.Second), 0); len(due) != 1 || due[0].ID != ids[0] {
		t.Fatalf("due before the others' time %+v", due)
	}
	if err := s.QueueRemove(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueRemove(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
	if _, err := s.QueueGet(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after removal: %v", err)
	}
	list, _ = s.QueueList(ctx)
	var left []uint64
	for _, m := range list {
		left = append(left, m.ID)
	}
	if !slices.Equal(left, ids[1:]) {
		t.Fatalf("left %v", left)
	}
}

func testRemoteProgressAndDigests(t *testing.T, s Backend) {
	ctx := context.Background()
	const key = "anna\x00imap.example.org:993\x00anna@example.org\x00INBOX"
	digest := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("ffffffffffffffffffffffffffffffff")
	if st, err := s.RemoteProgress(ctx, key); err != nil || st != (store.RemoteState{}) {
		t.Fatalf("fresh progress %+v %v", st, err)
	}
	d := &store.Delivery{Body: msg("pulled"), Targets: []store.Target{{Account: "anna", Folder: "INBOX", Quota: 10000}}}
	if _, err := s.DeliverRemote(ctx, key, store.RemoteState{UIDValidity: 7, LastUID: 3}, digest, d); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.RemoteProgress(ctx, key); st != (store.RemoteState{UIDValidity: 7, LastUID: 3}) {
		t.Fatalf("progress %+v", st)
	}
	if filed, err := s.RemoteFiled(ctx, key, digest); err != nil || !filed {
		t.Fatalf("filed %v %v", filed, err)
	}
	if filed, _ := s.RemoteFiled(ctx, "bo"+key[4:], digest); filed {
		t.Fatal("another account's digest found")
	}
	if filed, _ := s.RemoteFiled(ctx, key, other); filed {
		t.Fatal("unknown digest found")
	}

	// Over quota nothing is filed and the state stays where it was.
	d = &store.Delivery{Body: make([]byte, 20000), Targets: []store.Target{{Account: "anna", Folder: "INBOX", Quota: 10000}}}
	if _, err := s.DeliverRemote(ctx, key, store.RemoteState{UIDValidity: 7, LastUID: 4}, other, d); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if st, _ := s.RemoteProgress(ctx, key); st != (store.RemoteState{UIDValidity: 7, LastUID: 3}) {
		t.Fatalf("progress after refusal %+v", st)
	}
	if f, _ := s.Folder(ctx, "anna", "INBOX"); f.Messages != 1 {
		t.Fatalf("%d messages after refusal", f.Messages)
	}
	if filed, _ := s.RemoteFiled(ctx, key, other); filed {
		t.Fatal("refused message's digest recorded")
	}

	if err := s.SaveRemoteProgress(ctx, key, store.RemoteState{UIDValidity: 8, LastUID: 1}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.RemoteProgress(ctx, key); st != (store.RemoteState{UIDValidity: 8, LastUID: 1}) {
		t.Fatalf("saved progress %+v", st)
	}
}
