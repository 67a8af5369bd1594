package certs

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"postkasse.dev/postkasse/internal/syncbuf"
	"postkasse.dev/postkasse/store"
)

// memStore is a Store in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) CacheEntry(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (s *memStore) PutCacheEntry(_ context.Context, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = data
	return nil
}

func (s *memStore) DeleteCacheEntry(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func TestCacheSpeaksAutocert(t *testing.T) {
	t.Parallel()
	st := &memStore{m: map[string][]byte{}}
	c := cache{st}
	ctx := context.Background()
	if _, err := c.Get(ctx, "acme_account+key"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("miss: %v", err)
	}
	if err := c.Put(ctx, "acme_account+key", []byte("k")); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "acme_account+key"); err != nil || string(v) != "k" {
		t.Fatalf("get %q %v", v, err)
	}
	if _, ok := st.m["acme/acme_account+key"]; !ok {
		t.Fatalf("store keys %v", st.m)
	}
	if err := c.Delete(ctx, "acme_account+key"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "acme_account+key"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestHandlersAndConfig(t *testing.T) {
	t.Parallel()
	m, err := New(Options{Directory: "https://127.0.0.1:1/dir", Hosts: []string{"mail.contoso.test"}, Store: &memStore{m: map[string][]byte{}}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Ready() || m.Cached(context.Background()) {
		t.Fatal("ready without a certificate")
	}
	cfg := m.TLSConfig("h2")
	if len(cfg.NextProtos) != 2 || cfg.NextProtos[1] != acme.ALPNProto || cfg.GetCertificate == nil {
		t.Fatalf("tls config %+v", cfg)
	}
	h := m.HTTPHandler(http.NotFoundHandler())
	for path, want := range map[string]int{"/.well-known/acme-challenge/unknown-token": http.StatusNotFound, "/other": http.StatusNotFound} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://mail.contoso.test"+path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
	if _, err := New(Options{Hosts: []string{"x.test"}}); err == nil {
		t.Fatal("no store accepted")
	}
}

// TestFailuresAreLoggedAndRetried: a directory that cannot be reached is
// logged and asked again, with growing waits, until ctx ends.
func TestFailuresAreLoggedAndRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	logs := &syncbuf.Buffer{}
	m, err := New(Options{
		Directory: "https://" + addr + "/dir", Hosts: []string{"mail.contoso.test"}, Store: &memStore{m: map[string][]byte{}},
		Logger: slog.New(slog.NewTextHandler(logs, nil)), RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(logs.String(), "no certificate yet") < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("not retried:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if m.Ready() {
		t.Fatal("ready without a certificate")
	}
	if !strings.Contains(logs.String(), "in=20ms") {
		t.Fatalf("the wait did not grow to RetryMax:\n%s", logs.String())
	}
}
