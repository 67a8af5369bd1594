package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// testRecentClaims: Select without a claim leaves \Recent in place, a
// claiming Select and ClaimRecent move it on (forward only, never past
// UIDNEXT), Status counts what is left.
func testRecentClaims(t *testing.T, s Backend) {
	ctx := context.Background()
	for i := range 3 {
		deliver(t, s, msg(fmt.Sprint(i)), "info")
	}
	anna := store.Access{Account: "info", Viewer: "anna", SeenPerUser: true}
	look, err := s.Select(ctx, anna, "INBOX", false)
	if err != nil || look.RecentFrom != 1 || look.Info.RecentFrom != 1 {
		t.Fatalf("look: recent from %d (info %d), %v", look.RecentFrom, look.Info.RecentFrom, err)
	}
	if st, err := s.Status(ctx, anna, "INBOX"); err != nil || st.RecentFrom != 1 || st.Recent != 3 {
		t.Fatalf("status before claims %+v %v", st, err)
	}
	if err := s.ClaimRecent(ctx, anna, look.Info.ID, 3); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx, anna, "INBOX"); err != nil || st.RecentFrom != 3 || st.Recent != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	// Backwards is no claim; past UIDNEXT stops at UIDNEXT.
	if err := s.ClaimRecent(ctx, anna, look.Info.ID, 2); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Folder(ctx, "info", "INBOX"); f.RecentFrom != 3 {
		t.Fatalf("claim moved back to %d", f.RecentFrom)
	}
	if err := s.ClaimRecent(ctx, anna, look.Info.ID, 100); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx, anna, "INBOX"); st.RecentFrom != 4 || st.Recent != 0 {
		t.Fatalf("claim past UIDNEXT: %+v", st)
	}
	if err := s.ClaimRecent(ctx, anna, look.Info.ID+100, 1); !errors.Is(err, store.ErrNoFolder) {
		t.Fatalf("claim in a missing folder: %v", err)
	}
	// A claiming Select gets what is left; the next one gets nothing.
	deliver(t, s, msg("new"), "info")
	first, err := s.Select(ctx, anna, "INBOX", true)
	if err != nil || first.RecentFrom != 4 || first.Info.RecentFrom != 5 {
		t.Fatalf("claiming select: %d (info %d) %v", first.RecentFrom, first.Info.RecentFrom, err)
	}
	second, err := s.Select(ctx, anna, "INBOX", true)
	if err != nil || second.RecentFrom != 5 {
		t.Fatalf("second claiming select: %d %v", second.RecentFrom, err)
	}
	// A read-only Select only looks.
	deliver(t, s, msg("newer"), "info")
	ro := store.Access{Account: "info", Viewer: "carl", ReadOnly: true}
	if v, _ := s.Select(ctx, ro, "INBOX", true); v.RecentFrom != 5 {
		t.Fatalf("read-only select: %d", v.RecentFrom)
	}
	if st, _ := s.Status(ctx, anna, "INBOX"); st.Recent != 1 {
		t.Fatalf("read-only select claimed: %+v", st)
	}
}

// testOwnSeenInChanges: a change of shared flags carries each viewer's own
// \Seen, the acting viewer's as this very change leaves it.
func testOwnSeenInChanges(t *testing.T, s Backend) {
	ctx := context.Background()
	deliver(t, s, msg("1"), "info")
	deliver(t, s, msg("2"), "info")
	id := inbox(t, s, "info").ID
	anna := store.Access{Account: "info", Viewer: "anna", SeenPerUser: true}
	bo := store.Access{Account: "info", Viewer: "bo", SeenPerUser: true}
	var mu sync.Mutex
	var changes []store.Change
	s.Subscribe(func(c store.Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() })
	last := func() store.Change {
		mu.Lock()
		defer mu.Unlock()
		return changes[len(changes)-1]
	}
	if _, err := s.StoreFlags(ctx, anna, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StoreFlags(ctx, bo, id, []store.UID{1, 2}, store.FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	c := last()
	if c.Viewer != "" || len(c.Messages) != 2 || !maps.Equal(c.Messages[0].OwnSeen, map[string]bool{"anna": true}) || c.Messages[1].OwnSeen != nil {
		t.Fatalf("shared change %+v", c)
	}
	// Bo's own \Seen set in the same operation as a shared flag.
	if _, err := s.StoreFlags(ctx, bo, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagSeen, store.FlagAnswered}); err != nil {
		t.Fatal(err)
	}
	c = last()
	if c.Viewer != "" || len(c.Messages) != 1 || !maps.Equal(c.Messages[0].OwnSeen, map[string]bool{"anna": true, "bo": true}) {
		t.Fatalf("shared change with bo's \\Seen %+v", c)
	}
	// A mailbox in shared mode still reports the overrides others keep.
	if _, err := s.StoreFlags(ctx, store.Access{Account: "info"}, id, []store.UID{1}, store.FlagsRemove, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	if c = last(); len(c.Messages) != 1 || !maps.Equal(c.Messages[0].OwnSeen, map[string]bool{"anna": true, "bo": true}) {
		t.Fatalf("shared-mode change %+v", c)
	}
}

// testQuotaRule: CheckRoom answers as a delivery would, and the 90%
// warning comes once, and again after usage dropped below the line.
func testQuotaRule(t *testing.T, s Backend) {
	ctx := context.Background()
	if err := s.CheckRoom(ctx, "nobody", 100, 100); err != nil {
		t.Fatalf("room in a missing account: %v", err)
	}
	if err := s.CheckRoom(ctx, "nobody", 100, 101); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("more than the quota: %v", err)
	}
	if err := s.CheckRoom(ctx, "nobody", 0, 1<<40); err != nil {
		t.Fatalf("no quota: %v", err)
	}
	const quota = 1100
	file := func(size int) store.TargetResult {
		t.Helper()
		res, err := s.Deliver(ctx, &store.Delivery{Body: make([]byte, size), Targets: []store.Target{{Account: "big", Folder: "INBOX", Quota: quota}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Targets[0]
	}
	if r := file(1000); r.Err != nil || !r.QuotaWarning {
		t.Fatalf("first past 90%%: %+v", r)
	}
	if err := s.CheckRoom(ctx, "big", quota, 100); err != nil {
		t.Fatalf("exactly full: %v", err)
	}
	if err := s.CheckRoom(ctx, "big", quota, 101); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("one byte over: %v", err)
	}
	if r := file(10); r.Err != nil || r.QuotaWarning {
		t.Fatalf("second past 90%%: %+v", r)
	}
	id := inbox(t, s, "big").ID
	acc := store.Access{Account: "big"}
	if _, err := s.StoreFlags(ctx, acc, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagDeleted}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, acc, id, nil); err != nil {
		t.Fatal(err)
	}
	if r := file(10); r.Err != nil || r.QuotaWarning {
		t.Fatalf("below the line: %+v", r)
	}
	if r := file(1000); r.Err != nil || !r.QuotaWarning {
		t.Fatalf("past 90%% again: %+v", r)
	}
}

// testCards: cards are kept byte for byte, If-Match guards writes, and the
// book's counter reports what changed, deletions included.
func testCards(t *testing.T, s Backend) {
	ctx := context.Background()
	book := store.Book{Account: "anna", Name: "contacts"}
	other := store.Book{Account: "anna", Name: "contacts2"}
	now := time.Unix(1700000000, 0)
	data := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n")
	if cards, n, err := s.CardChanges(ctx, book, 0); err != nil || n != 0 || len(cards) != 0 {
		t.Fatalf("empty book: %+v %d %v", cards, n, err)
	}
	a, created, err := s.PutCard(ctx, book, "a.vcf", data, "", now)
	if err != nil || !created || a.Stamp != 1 || a.ETag == "" || !a.Modified.Equal(now) {
		t.Fatalf("put: %+v %v %v", a, created, err)
	}
	if _, _, err := s.PutCard(ctx, other, "x.vcf", data, "", now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutCard(ctx, book, "a.vcf", data, "wrong", now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("put with a stale ETag: %v, want ErrConflict", err)
	}
	if _, _, err := s.PutCard(ctx, book, "new.vcf", data, "*", now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("put If-Match * of a missing card: %v, want ErrConflict", err)
	}
	for _, bad := range []struct {
		book       store.Book
		name, data string
	}{{store.Book{Account: "anna"}, "a.vcf", "x"}, {book, "", "x"}, {book, "a.vcf", ""}} {
		if _, _, err := s.PutCard(ctx, bad.book, bad.name, []byte(bad.data), "", now); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("put %+v: %v, want ErrInvalid", bad, err)
		}
	}
	b, created, err := s.PutCard(ctx, book, "b.vcf", data, "", now)
	if err != nil || !created || b.Stamp != 2 {
		t.Fatalf("put b: %+v %v %v", b, created, err)
	}
	got, err := s.Card(ctx, book, "a.vcf")
	if err != nil || !bytes.Equal(got.Data, data) || got.ETag != a.ETag || got.Stamp != 1 || !got.Modified.Equal(now) {
		t.Fatalf("card: %+v %v", got, err)
	}
	if err := s.DeleteCard(ctx, book, "a.vcf", "wrong", now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with a stale ETag: %v", err)
	}
	if err := s.DeleteCard(ctx, book, "a.vcf", a.ETag, now); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCard(ctx, book, "a.vcf", "", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := s.Card(ctx, book, "a.vcf"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted card: %v", err)
	}
	changes, n, err := s.CardChanges(ctx, book, 1)
	if err != nil || n != 3 || len(changes) != 2 {
		t.Fatalf("changes since 1: %+v now %d %v", changes, n, err)
	}
	if changes[0].Name != "a.vcf" || !changes[0].Deleted || changes[0].Stamp != 3 || changes[1].Name != "b.vcf" {
		t.Errorf("changes: %+v", changes)
	}
	if changes, _, _ := s.CardChanges(ctx, book, 3); len(changes) != 0 {
		t.Errorf("changes since now: %+v", changes)
	}
	cards, err := s.Cards(ctx, book)
	if err != nil || len(cards) != 1 || cards[0].Name != "b.vcf" {
		t.Errorf("cards: %+v %v", cards, err)
	}
	// A card put again after its deletion is new again.
	if _, created, err := s.PutCard(ctx, book, "a.vcf", []byte("BEGIN:VCARD\r\nEND:VCARD\r\n"), "", now); err != nil || !created {
		t.Fatalf("put after delete: %v %v", created, err)
	}
	if cards, err := s.Cards(ctx, other); err != nil || len(cards) != 1 || cards[0].Stamp != 1 {
		t.Errorf("other book: %+v %v", cards, err)
	}
}

// testCacheEntries: entries are stored, replaced, bounded and deleted.
func testCacheEntries(t *testing.T, s Backend) {
	ctx := context.Background()
	if _, err := s.CacheEntry(ctx, "acme_account+key"); !errors.Is(err, store.ErrNotFound) {
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
	if err := s.PutCacheEntry(ctx, "big", make([]byte, 2<<20)); !errors.Is(err, store.ErrCacheEntryTooLarge) {
		t.Fatalf("2 MiB entry: %v", err)
	}
	if err := s.PutCacheEntry(ctx, "", []byte("x")); err == nil {
		t.Fatal("empty key accepted")
	}
	if err := s.DeleteCacheEntry(ctx, "mail.contoso.test"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCacheEntry(ctx, "never.there"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.CacheEntry(ctx, "acme_account+key"); err != nil || !bytes.Equal(v, []byte("key 2")) {
		t.Fatalf("entry: %q %v", v, err)
	}
	if _, err := s.CacheEntry(ctx, "mail.contoso.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted entry: %v", err)
	}
	if _, err := s.CacheEntry(ctx, "big"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused entry: %v", err)
	}
}
