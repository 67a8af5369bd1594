package postgres

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
	"postkasse.dev/postkasse/store/storetest"
)

// copyRecords hands every record export gives to a new loader, then
// commits it; put and commit are the loader's.
func copyRecords(ctx context.Context, export func(func(store.Record) error) error, put func(context.Context, store.Record) error, commit func(context.Context) error, abort func()) error {
	if err := export(func(r store.Record) error { return put(ctx, r) }); err != nil {
		abort()
		return err
	}
	return commit(ctx)
}

func pgExport(dsn string) func(func(store.Record) error) error {
	return func(fn func(store.Record) error) error { return Export(context.Background(), dsn, fn) }
}

func boltExport(path string) func(func(store.Record) error) error {
	return func(fn func(store.Record) error) error { return store.Export(context.Background(), path, fn) }
}

// TestCopyBboltToPostgresAndBack: a bbolt store with one of everything,
// copied into PostgreSQL and from there into a new bbolt file, gives the
// same records at every step; the PostgreSQL copy passes Verify and fills
// every table the copy is meant to fill. Every body's search data comes
// along both ways, and a body from before search data stays without.
func TestCopyBboltToPostgresAndBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src, back := filepath.Join(dir, "src.db"), filepath.Join(dir, "back.db")
	b, err := store.Open(ctx, store.Options{Path: src, Analyze: storetest.Analyze})
	if err != nil {
		t.Fatal(err)
	}
	storetest.FillOld(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = store.Open(ctx, store.Options{Path: src, Analyze: storetest.Analyze, SearchData: storetest.SearchData})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Fill(t, b)
	wantSearch, wantSearchBytes, err := b.SearchDataStats()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.DB(t, cluster)
	l, err := NewLoader(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyRecords(ctx, boltExport(src), l.Put, l.Commit, l.Abort); err != nil {
		t.Fatal(err)
	}
	storetest.CheckSearchData(t, boltExport(src), 1)
	storetest.CheckSearchData(t, pgExport(dsn), 1)
	want := storetest.Records(t, boltExport(src))
	if diff := storetest.Diff(want, storetest.Records(t, pgExport(dsn))); diff != "" {
		t.Errorf("bbolt to PostgreSQL:%s", diff)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range copiedTables {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n == 0 {
			t.Errorf("table %s holds %d rows after the copy (%v): Fill must give it some, so the test sees it copied", table, n, err)
		}
	}
	conn.Close(ctx)
	bl, err := store.NewLoader(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyRecords(ctx, pgExport(dsn), bl.Put, bl.Commit, bl.Abort); err != nil {
		t.Fatal(err)
	}
	storetest.CheckSearchData(t, boltExport(back), 1)
	if diff := storetest.Diff(want, storetest.Records(t, boltExport(back))); diff != "" {
		t.Errorf("PostgreSQL back to bbolt:%s", diff)
	}
	bb, err := store.Open(ctx, store.Options{Path: back})
	if err != nil {
		t.Fatal(err)
	}
	n, size, err := bb.SearchDataStats()
	if err == nil {
		err = bb.Verify(ctx)
	}
	bb.Close()
	if err != nil || n != wantSearch || size != wantSearchBytes {
		t.Fatalf("back on bbolt: search data for %d bodies, %d bytes (%v); the source %d, %d", n, size, err, wantSearch, wantSearchBytes)
	}
	// The copy serves: verified, and it goes on where the source stopped.
	s := openTest(t, dsn, Options{})
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if n, size, err := s.SearchDataStats(); err != nil || n != wantSearch || size != wantSearchBytes {
		t.Fatalf("on PostgreSQL: search data for %d bodies, %d bytes (%v); the source %d, %d", n, size, err, wantSearch, wantSearchBytes)
	}
	res, err := s.Deliver(ctx, &store.Delivery{Body: []byte("Subject: next\r\n\r\n"), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}},
		Queue: []store.NewQueuedMessage{{From: "anna@x", Recipients: []string{"z@example.org"}}}})
	if err != nil || res.Targets[0].UID != 6 || res.QueueIDs[0] != 2 {
		t.Fatalf("delivery into the copy: %+v %v", res, err)
	}
	if err := s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "New"}); err != nil {
		t.Fatal(err)
	}
	folders, _ := s.Folders(ctx, "anna")
	for _, f := range folders {
		if f.Name == "New" && (f.ID != 4 || f.UIDValidity <= folders[0].UIDValidity) {
			t.Errorf("new folder after the copy: %+v, first %+v", f, folders[0])
		}
	}
}

// TestCopiedTables: every table of the schema is either filled by a copy
// or listed as one that begins afresh, with the reason.
func TestCopiedTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t, "", Options{})
	rows, err := s.pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	var tables []string
	_, err = pgx.ForEachRow(rows, []any{&name}, func() error {
		tables = append(tables, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var known []string
	known = append(known, copiedTables...)
	for k := range freshTables {
		known = append(known, k)
	}
	slices.Sort(known)
	if !slices.Equal(tables, known) {
		t.Errorf("schema's tables %q; copied or begun afresh: %q", tables, known)
	}
}

// TestCopyRefusals: a copy goes into an empty database only, never from
// or into one a node is connected to, and a bad DSN is refused without
// quoting it.
func TestCopyRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	node := openTest(t, "", Options{})
	storetest.Fill(t, node)
	dsn := node.pool.Config().ConnString()
	if err := Export(ctx, dsn, func(store.Record) error { return nil }); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("export while a node runs: %v", err)
	}
	if _, err := NewLoader(ctx, dsn); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("load while a node runs: %v", err)
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLoader(ctx, dsn); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("load into a store: %v", err)
	}
	_, err := NewLoader(ctx, "postgres://u:hunter2@[::1")
	if !errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad DSN: %v", err)
	}
	// A copy that fails midway leaves its target empty.
	empty := pgtest.DB(t, cluster)
	l, err := NewLoader(ctx, empty)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("source failed")
	n := 0
	err = copyRecords(ctx, pgExport(dsn), func(ctx context.Context, r store.Record) error {
		if n++; n == 12 {
			return boom
		}
		return l.Put(ctx, r)
	}, l.Commit, l.Abort)
	if !errors.Is(err, boom) {
		t.Fatalf("failed copy: %v", err)
	}
	if got := storetest.Records(t, pgExport(empty)); len(got) != 1 {
		t.Fatalf("a failed copy left %q", got)
	}
	// A copy that does not pass the checks is not committed.
	if l, err = NewLoader(ctx, empty); err != nil {
		t.Fatal(err)
	}
	for _, r := range storetest.Inconsistent() {
		if err := l.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Commit(ctx); err == nil || !strings.Contains(err.Error(), "folder counters") {
		t.Fatalf("commit of an inconsistent store: %v", err)
	}
	if got := storetest.Records(t, pgExport(empty)); len(got) != 1 {
		t.Fatalf("a refused commit left %q", got)
	}
}
