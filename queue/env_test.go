package queue

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// env is a runner with fake storage, a settable clock and a recording
// bounce submitter, pointed at a test DNS zone and test net.
type env struct {
	t       *testing.T
	clock   *clock
	store   *fakeStorage
	bounces *fakeSubmitter
	runner  *Runner
	logs    *syncBuffer
}

func newEnv(t *testing.T, port int, z *zone, configure func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), bounces: &fakeSubmitter{}, logs: &syncBuffer{}}
	e.store = newFakeStorage(e.clock.Now)
	opts := Options{
		Storage:    e.store,
		Hostname:   "mail.contoso.test",
		Port:       port,
		RetryAfter: time.Hour,
		Lifetime:   120 * time.Hour,
		Bounces:    e.bounces,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        e.clock.Now,
	}
	if z != nil {
		opts.Resolver = z.addr
	}
	if configure != nil {
		configure(&opts)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.runner = r
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("runner log:\n%s", e.logs.String())
		}
	})
	return e
}

// enqueue queues body from from to rcpts.
func (e *env) enqueue(from string, body []byte, rcpts ...string) uint64 {
	e.t.Helper()
	ids, err := e.store.Enqueue(context.Background(), store.NewQueuedMessage{From: from, Recipients: rcpts, Body: body})
	if err != nil {
		e.t.Fatal(err)
	}
	return ids[0]
}

// flush runs one round over the whole queue.
func (e *env) flush() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.runner.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// run starts Run and stops it when the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.runner.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
}

// state returns the recipients' states by address; gone is true once the
// message left the queue.
func (e *env) state(id uint64) (byAddr map[string]store.RecipientState, gone bool) {
	m, ok := e.store.get(id)
	if !ok {
		return nil, true
	}
	byAddr = map[string]store.RecipientState{}
	for _, r := range m.Recipients {
		byAddr[r.Address] = r.State
	}
	return byAddr, false
}

func testMessage(from, to, subject string) []byte {
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@contoso.test>\r\n" +
		"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nHello,\r\n\r\nthis is " + subject + ".\r\n")
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
