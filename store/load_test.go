package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/storetest"
)

// openFilled makes a store filled by storetest.Fill, with one body from
// before search data (storetest.FillOld), and returns it open with
// SearchData.
func openFilled(t *testing.T, path string) *store.Store {
	t.Helper()
	old, err := store.Open(context.Background(), store.Options{Path: path, Analyze: storetest.Analyze})
	if err != nil {
		t.Fatal(err)
	}
	storetest.FillOld(t, old)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), store.Options{Path: path, Analyze: storetest.Analyze, SearchData: storetest.SearchData})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Fill(t, s)
	return s
}

// copyFile exports the store at from and loads it into a new store at to.
func copyFile(ctx context.Context, from, to string) error {
	l, err := store.NewLoader(ctx, to)
	if err != nil {
		return err
	}
	if err := store.Export(ctx, from, func(r store.Record) error { return l.Put(ctx, r) }); err != nil {
		l.Abort()
		return err
	}
	return l.Commit(ctx)
}

func exportOf(path string) func(fn func(store.Record) error) error {
	return func(fn func(store.Record) error) error { return store.Export(context.Background(), path, fn) }
}

// TestExportLoadKeepsEverything: a store filled with one of everything,
// exported and loaded into a new file, exports the very same records, and
// every top-level bucket holds as many keys in the copy as in the source,
// none of them empty in the source: a bucket the copy leaves behind fails
// here once Fill puts something in it. Every body's search data comes
// along (none for the body from before search data), and SEARCH's reads
// find it in the copy.
func TestExportLoadKeepsEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	s := openFilled(t, src)
	wantSearch, _, err := s.SearchDataStats()
	if err != nil {
		t.Fatal(err)
	}
	// The exporter refuses while the store is open, as with a server.
	err = store.Export(ctx, src, func(store.Record) error { return nil })
	if !errors.Is(err, store.ErrInUse) {
		t.Fatalf("export of an open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyFile(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(src); string(after) != string(before) {
		t.Error("the export wrote to its source")
	}
	storetest.CheckSearchData(t, exportOf(src), 1)
	storetest.CheckSearchData(t, exportOf(dst), 1)
	want, got := storetest.Records(t, exportOf(src)), storetest.Records(t, exportOf(dst))
	if diff := storetest.Diff(want, got); diff != "" {
		t.Errorf("records differ:%s", diff)
	}
	srcKeys, dstKeys := topKeys(t, src), topKeys(t, dst)
	for name, n := range srcKeys {
		if n == 0 {
			t.Errorf("Fill leaves bucket %q empty: the test cannot see whether it is copied", name)
		}
		if dstKeys[name] != n {
			t.Errorf("bucket %q: %d keys in the source, %d in the copy", name, n, dstKeys[name])
		}
	}
	if len(srcKeys) != len(dstKeys) {
		t.Errorf("buckets: source %v, copy %v", srcKeys, dstKeys)
	}
	c, err := store.Open(ctx, store.Options{Path: dst, Analyze: storetest.Analyze, SearchData: storetest.SearchData})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.SearchDataStats(); err != nil || n != wantSearch {
		t.Fatalf("the copy has search data for %d bodies (%v), the source for %d", n, err, wantSearch)
	}
	checkSearchInPlace(t, c, "anna", []string{"INBOX", "Sent", "Projects/2026"})
	checkSearchInPlace(t, c, "info", []string{"INBOX", "Archive"})
	// The copy goes on where the source stopped: the next UID and queue id.
	res, err := c.Deliver(ctx, &store.Delivery{Body: []byte("Subject: next\r\n\r\n"), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}},
		Queue: []store.NewQueuedMessage{{From: "anna@x", Recipients: []string{"z@example.org"}}}})
	if err != nil || res.Targets[0].UID != 6 || res.QueueIDs[0] != 2 {
		t.Fatalf("delivery into the copy: %+v %v", res, err)
	}
}

// checkSearchInPlace checks that every message of the account's folders
// reads its body's search data in place, as SEARCH reads it.
func checkSearchInPlace(t *testing.T, s *store.Store, account string, folders []string) {
	t.Helper()
	ctx := context.Background()
	acc := store.Access{Account: account, Viewer: account}
	for _, name := range folders {
		view, err := s.Select(ctx, acc, name, false)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = s.MessagesInPlace(ctx, acc, view.Info.ID, view.UIDs, func(m *store.MessageInfo) error {
			if n++; !strings.HasPrefix(string(m.SearchData), "search of ") {
				t.Errorf("%s %s UID %d: search data %q", account, name, m.UID, m.SearchData)
			}
			return nil
		})
		if err != nil || n == 0 {
			t.Fatalf("%s %s: %d messages, %v", account, name, n, err)
		}
	}
}

// topKeys counts the keys of each top-level bucket of a store file.
func topKeys(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]int{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			n := 0
			b.ForEach(func(_, _ []byte) error { n++; return nil })
			out[string(name)] = n
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLoaderLeavesNothingOnFailure: a load that fails midway, or is
// abandoned, leaves no file at its target, and a load refuses a target
// that exists.
func TestLoaderLeavesNothingOnFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	openFilled(t, src).Close()
	dst := filepath.Join(dir, "dst.db")
	l, err := store.NewLoader(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("source failed")
	n := 0
	err = store.Export(ctx, src, func(r store.Record) error {
		if n++; n == 10 {
			return boom
		}
		return l.Put(ctx, r)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("export: %v", err)
	}
	l.Abort()
	// The store's lock file stays, as after a server or compact.
	if left, _ := filepath.Glob(filepath.Join(dir, "dst*")); len(left) != 1 || left[0] != dst+".lock" {
		t.Fatalf("an abandoned load left %v", left)
	}
	// A message whose body never came fails the load.
	l, err = store.NewLoader(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.Record{
		&store.MetaRecord{}, &store.AccountRecord{ID: "anna", NextFolder: 2},
		&store.FolderRecord{Account: "anna", ID: 1, Name: "INBOX", UIDValidity: 1, UIDNext: 2, RecentFrom: 1},
	} {
		if err := l.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Put(ctx, &store.MessageRecord{Account: "anna", Folder: 1, UID: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("message without its body: %v", err)
	}
	l.Abort()
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("target after a failed load: %v", err)
	}
	// A copy that does not verify is not committed.
	l, err = store.NewLoader(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range storetest.Inconsistent() {
		if err := l.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Commit(ctx); err == nil || !strings.Contains(err.Error(), "UIDNEXT") {
		t.Fatalf("commit of an inconsistent store: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("target after a refused commit: %v", err)
	}
	if _, err := store.NewLoader(ctx, src); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("load over an existing store: %v", err)
	}
}
