package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestLoadNamesSearchData: in a copy, every message record names its
// body's search data, an old record (from before search data) included,
// and a folder's messages name ascending ids, as deliveries leave them
// (blobs.go), however the bodies' hashes sort; a body's search data is
// stored once however many messages use it. The copy's refresh (its
// marks are not carried: the copy's indexes are built anew) finds no
// search data to make.
func TestLoadNamesSearchData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	s, err := Open(ctx, Options{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, msg("old"), "anna")
	s.Close()
	s, err = Open(ctx, Options{Path: src, SearchData: func(b []byte) []byte { return []byte("search of " + string(b[:30])) }})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, msg("old"), "bo") // gives the old body search data
	for i := range 30 {
		deliver(t, s, msg(fmt.Sprint("new ", i)), "anna", "bo")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := Export(ctx, src, func(r Record) error { return l.Put(ctx, r) }); err != nil {
		l.Abort()
		t.Fatal(err)
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	c, err := Open(ctx, Options{Path: dst, SearchData: func(b []byte) []byte { calls.Add(1); return []byte("again") }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.RefreshMeta(ctx, "t", func([]byte) bool { return false }, 10); err != nil || calls.Load() != 0 {
		t.Fatalf("the copy's refresh made search data for %d bodies (%v)", calls.Load(), err)
	}
	if n, _, err := c.SearchDataStats(); err != nil || n != 31 {
		t.Fatalf("search data for %d bodies (%v), want 31", n, err)
	}
	err = c.view(ctx, func(tx *bolt.Tx) error {
		refs, search := tx.Bucket(bucketBlobRefs), tx.Bucket(bucketBlobSearch)
		for _, account := range []string{"anna", "bo"} {
			a, err := getAccount(tx, account, false)
			if err != nil {
				return err
			}
			var last uint64
			var rec messageRecord
			err = a.messages(1).ForEach(func(k, v []byte) error {
				if err := decodeMessage(v, &rec, false); err != nil {
					return err
				}
				ref := getBlobRef(refs, rec.hash)
				if rec.searchID == 0 || rec.searchID != ref.searchID || search.Get(u64(rec.searchID)) == nil {
					t.Errorf("%s UID %x: record names search data %d, its body %d", account, k, rec.searchID, ref.searchID)
				}
				if account == "anna" && rec.searchID <= last {
					t.Errorf("anna UID %x: search data %d after %d", k, rec.searchID, last)
				}
				last = rec.searchID
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
