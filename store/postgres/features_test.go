package postgres

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// TestMigrateFromVersion1: a database made by the first schema, with mail
// in it, is brought to the newest version on Open, keeping the mail, and
// the new tables work; the body stored before search data gets it from
// RefreshMeta.
func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DB(t, cluster)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	setup := []string{
		`CREATE TABLE schema_version (version integer NOT NULL)`,
		migrations[0],
		`INSERT INTO schema_version VALUES (1)`,
		`INSERT INTO accounts (id, usage, next_folder) VALUES ('anna', 12, 2)`,
		`INSERT INTO folders (account, id, name, uid_validity, uid_next, recent_from, messages, unseen, size)
			VALUES ('anna', 1, 'INBOX', 7, 5, 3, 1, 1, 12)`,
		`INSERT INTO blobs (hash, refs, body) VALUES (sha256('Subject: old'::bytea), 1, 'Subject: old'::bytea)`,
		`INSERT INTO messages (account, folder, uid, flags, date_ns, size, hash, prefix, meta)
			VALUES ('anna', 1, 4, 0, 0, 12, sha256('Subject: old'::bytea), '', 'old meta')`,
	}
	for _, q := range setup {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%.40q: %v", q, err)
		}
	}
	s := openTest(t, dsn, Options{})
	f, err := s.Folder(ctx, "anna", "INBOX")
	if err != nil || f.UIDValidity != 7 || f.UIDNext != 5 || f.RecentFrom != 3 {
		t.Fatalf("folder after migrating: %+v %v", f, err)
	}
	book := store.Book{Account: "anna", Name: "contacts"}
	if _, _, err := s.PutCard(ctx, book, "a.vcf", []byte("BEGIN:VCARD\r\nEND:VCARD\r\n"), "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCacheEntry(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Import(ctx, store.Target{Account: "anna", Folder: "INBOX"}, []byte("d"), []byte("Subject: x\r\n\r\n"), time.Now()); err != nil || !ok {
		t.Fatalf("import after migrating: %v %v", ok, err)
	}
	rows, _ := conn.Query(ctx, `SELECT version FROM schema_version ORDER BY version`)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || !slices.Equal(versions, []int{1, 2, 3, 4}) {
		t.Fatalf("schema versions %v %v", versions, err)
	}
	if n, _, err := s.SearchDataStats(); err != nil || n != 1 {
		t.Fatalf("before the refresh, %d bodies have search data (%v), want the imported one", n, err)
	}
	if err := s.RefreshMeta(ctx, "t", func([]byte) bool { return false }, 10); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.SearchDataStats(); err != nil || n != 2 {
		t.Fatalf("after the refresh, %d bodies have search data (%v), want 2", n, err)
	}
}

// TestTwoNodesShareCardsAndCache: cards written at once through two nodes
// into one book get distinct stamps, each seen by both nodes, and a cache
// entry one node writes (an ACME certificate) is the other's.
func TestTwoNodesShareCardsAndCache(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	book := store.Book{Account: "anna", Name: "contacts"}
	var wg sync.WaitGroup
	for i := range 20 {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := fmt.Appendf(nil, "BEGIN:VCARD\r\nFN:%d\r\nEND:VCARD\r\n", i)
			if _, _, err := node.PutCard(ctx, book, fmt.Sprintf("%02d.vcf", i), data, "", time.Now()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	onA, nowA, err := a.CardChanges(ctx, book, 0)
	if err != nil {
		t.Fatal(err)
	}
	onB, nowB, _ := b.CardChanges(ctx, book, 0)
	stamps := make(map[uint64]bool)
	for _, c := range onA {
		stamps[c.Stamp] = true
	}
	if len(onA) != 20 || len(stamps) != 20 || nowA != 20 || nowB != 20 || len(onB) != 20 {
		t.Fatalf("A: %d cards, %d stamps, counter %d; B: %d cards, counter %d", len(onA), len(stamps), nowA, len(onB), nowB)
	}
	if err := a.PutCacheEntry(ctx, "mail.contoso.test", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	if v, err := b.CacheEntry(ctx, "mail.contoso.test"); err != nil || !bytes.Equal(v, []byte("cert")) {
		t.Fatalf("B's entry: %q %v", v, err)
	}
}

// TestTwoNodesOwnSeenInFeed: the viewers' own \Seen in a change of shared
// flags reaches the other node's subscribers, and a \Recent claim made on
// one node holds on the other.
func TestTwoNodesOwnSeenInFeed(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	for i := range 2 {
		if _, err := a.Deliver(ctx, &store.Delivery{Body: body(i), Targets: []store.Target{{Account: "info", Folder: "INBOX"}}}); err != nil {
			t.Fatal(err)
		}
	}
	anna := store.Access{Account: "info", Viewer: "anna", SeenPerUser: true}
	view, err := a.Select(ctx, anna, "INBOX", true)
	if err != nil || view.RecentFrom != 1 {
		t.Fatalf("select on A: %+v %v", view, err)
	}
	if v, _ := b.Select(ctx, anna, "INBOX", true); v.RecentFrom != 3 {
		t.Fatalf("B claimed again from %d", v.RecentFrom)
	}
	onB := changes(b)
	if _, err := a.StoreFlags(ctx, anna, view.Info.ID, []store.UID{1}, store.FlagsAdd, []string{store.FlagSeen, store.FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	flagChange := func() store.Change {
		for {
			// The deliveries' changes may still be on their way.
			if c := next(t, onB); c.Kind == store.ChangeFlags {
				return c
			}
		}
	}
	own := flagChange()
	shared := flagChange()
	if own.Viewer != "anna" || shared.Viewer != "" || len(shared.Messages) != 1 ||
		!maps.Equal(shared.Messages[0].OwnSeen, map[string]bool{"anna": true}) {
		t.Fatalf("changes on B: %+v then %+v", own, shared)
	}
}

// TestAddCacheEntryAgrees: two nodes adding the same key at once with
// different values both get the one that was stored.
func TestAddCacheEntryAgrees(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t, Options{})
	ctx := context.Background()
	for i := range 20 {
		key := fmt.Sprintf("secret-%d", i)
		var got [2][]byte
		var errs [2]error
		var wg sync.WaitGroup
		for j, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[j], errs[j] = s.AddCacheEntry(ctx, key, []byte{byte(j)})
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || !bytes.Equal(got[0], got[1]) {
			t.Fatalf("%s: A got %v (%v), B got %v (%v)", key, got[0], errs[0], got[1], errs[1])
		}
	}
}
