package queue

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// fakeStorage is an in-memory Storage with the contract of the real one.
type fakeStorage struct {
	now func() time.Time

	mu      sync.Mutex
	next    uint64
	msgs    map[uint64]store.QueuedMessage
	bodies  map[uint64][]byte
	updates int
}

func newFakeStorage(now func() time.Time) *fakeStorage {
	return &fakeStorage{now: now, msgs: map[uint64]store.QueuedMessage{}, bodies: map[uint64][]byte{}}
}

func (f *fakeStorage) Enqueue(ctx context.Context, msgs ...store.NewQueuedMessage) ([]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []uint64
	for _, n := range msgs {
		f.next++
		m := store.QueuedMessage{ID: f.next, From: n.From, Created: f.now(), NextAttempt: f.now(), Kind: n.Kind}
		for _, r := range n.Recipients {
			m.Recipients = append(m.Recipients, store.QueuedRecipient{Address: r})
		}
		f.msgs[m.ID] = m
		f.bodies[m.ID] = slices.Clone(n.Body)
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// put stores a message as it is, for tests that need an old one.
func (f *fakeStorage) put(m store.QueuedMessage, body []byte) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	m.ID = f.next
	f.msgs[m.ID] = cloneMessage(m)
	f.bodies[m.ID] = slices.Clone(body)
	return m.ID
}

func (f *fakeStorage) QueueDue(ctx context.Context, now time.Time, limit int) ([]store.QueuedMessage, error) {
	all, _ := f.QueueList(ctx)
	var due []store.QueuedMessage
	for _, m := range all {
		if !m.NextAttempt.After(now) {
			due = append(due, m)
		}
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].NextAttempt.Before(due[j].NextAttempt) })
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	return due, nil
}

func (f *fakeStorage) QueueList(ctx context.Context) ([]store.QueuedMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.QueuedMessage
	for _, m := range f.msgs {
		out = append(out, cloneMessage(m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeStorage) QueueBody(ctx context.Context, id uint64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bodies[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return slices.Clone(b), nil
}

func (f *fakeStorage) QueueUpdate(ctx context.Context, m store.QueuedMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.msgs[m.ID]; !ok {
		return store.ErrNotFound
	}
	f.updates++
	if !hasPending(m) {
		delete(f.msgs, m.ID)
		delete(f.bodies, m.ID)
		return nil
	}
	f.msgs[m.ID] = cloneMessage(m)
	return nil
}

func (f *fakeStorage) QueueRemove(ctx context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.msgs[id]; !ok {
		return store.ErrNotFound
	}
	delete(f.msgs, id)
	delete(f.bodies, id)
	return nil
}

// get returns a message's state; ok is false once it has left the queue.
func (f *fakeStorage) get(id uint64) (store.QueuedMessage, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.msgs[id]
	return cloneMessage(m), ok
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// submitted is one message handed to the fake Submitter.
type submitted struct {
	from string
	to   []string
	msg  []byte
	kind string
}

// fakeSubmitter records DSNs; it fails while fail is set.
type fakeSubmitter struct {
	mu   sync.Mutex
	got  []submitted
	fail bool
}

func (s *fakeSubmitter) Submit(ctx context.Context, from string, to []string, msg []byte, kind string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("submitter is down")
	}
	s.got = append(s.got, submitted{from: from, to: slices.Clone(to), msg: slices.Clone(msg), kind: kind})
	return nil
}

func (s *fakeSubmitter) all() []submitted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *fakeSubmitter) setFail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

// eventually polls cond until it holds or the test has waited too long.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
