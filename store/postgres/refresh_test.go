package postgres

import (
	"bytes"
	"context"
	"testing"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// TestRefreshMeta: after the analysis changes, RefreshMeta gives every
// stale message the new result (in batches smaller than the folder, over
// two folders), keeps the prefix, gives bodies without search data theirs,
// and a second run finds nothing to do.
func TestRefreshMeta(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DB(t, cluster)
	old := openTest(t, dsn, Options{Analyze: func([]byte) []byte { return []byte("v1") }})
	for i := range 7 {
		folder := []string{"INBOX", "Archive"}[i%2]
		d := &store.Delivery{Body: body(i), Targets: []store.Target{{Account: "anna", Folder: folder, Prefix: []byte("Delivered-To: anna@x\r\n")}}}
		if _, err := old.Deliver(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	// As a store from before search data: none for any body.
	if _, err := old.pool.Exec(ctx, `UPDATE blobs SET search = NULL`); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dsn, Options{Analyze: func(b []byte) []byte { return append([]byte("v2:"), b[:4]...) }})
	stale := func(meta []byte) bool { return !bytes.HasPrefix(meta, []byte("v2:")) }
	if err := s.RefreshMeta(ctx, "v2", stale, 2); err != nil {
		t.Fatal(err)
	}
	var n int
	for _, name := range []string{"INBOX", "Archive"} {
		view, err := s.Select(ctx, store.Access{Account: "anna"}, name, false)
		if err != nil {
			t.Fatal(err)
		}
		err = s.MessagesInPlace(ctx, store.Access{Account: "anna"}, view.Info.ID, view.UIDs, func(m *store.MessageInfo) error {
			n++
			if stale(m.Meta) || string(m.Prefix) != "Delivered-To: anna@x\r\n" || len(m.SearchData) == 0 {
				t.Errorf("%s %d: meta %q, prefix %q, search data %q", name, m.UID, m.Meta, m.Prefix, m.SearchData)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 7 {
		t.Fatalf("%d messages seen, want 7", n)
	}
	if count, _, err := s.SearchDataStats(); err != nil || count != 7 {
		t.Fatalf("%d bodies with search data, want 7 (%v)", count, err)
	}
	calls := 0
	if err := s.RefreshMeta(ctx, "v2", func(meta []byte) bool { calls++; return stale(meta) }, 2); err != nil || calls != 7 {
		t.Fatalf("second run: %d messages looked at, %v", calls, err)
	}
}
