package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestCacheEntries(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mail.db")
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CacheEntry(ctx, "acme_account+key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty cache: %v", err)
	}
	if err := s.PutCacheEntry(ctx, "acme_account+key", []byte("key 1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCacheEntry(ctx, "acme_account+key", []byte("key 2")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCacheEntry(ctx, "mail.contoso.test", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCacheEntry(ctx, "big", make([]byte, 2<<20)); !errors.Is(err, ErrCacheEntryTooLarge) {
		t.Fatalf("2 MiB entry: %v", err)
	}
	// AddCacheEntry keeps what is there.
	if got, err := s.AddCacheEntry(ctx, "acme_account+key", []byte("key 3")); err != nil || string(got) != "key 2" {
		t.Fatalf("AddCacheEntry over an entry: %q %v", got, err)
	}
	if got, err := s.AddCacheEntry(ctx, "secret", []byte("s1")); err != nil || string(got) != "s1" {
		t.Fatalf("AddCacheEntry of a new key: %q %v", got, err)
	}
	if err := s.DeleteCacheEntry(ctx, "mail.contoso.test"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCacheEntry(ctx, "never.there"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Entries survive a restart.
	s, err = Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.CacheEntry(ctx, "acme_account+key"); err != nil || !bytes.Equal(v, []byte("key 2")) {
		t.Fatalf("after reopening: %q %v", v, err)
	}
	if _, err := s.CacheEntry(ctx, "mail.contoso.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted entry: %v", err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
