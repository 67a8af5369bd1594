package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// TestBackupSaysUseDatabaseTools: backup refuses with ErrUnsupported and
// names PostgreSQL's own tools (SPEC §12), without calling write.
func TestBackupSaysUseDatabaseTools(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", Options{})
	err := s.Backup(context.Background(), func(int64, io.WriterTo) error {
		t.Error("write called")
		return nil
	})
	if !errors.Is(err, store.ErrUnsupported) || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup: %v", err)
	}
}

// TestPurgeAccountTakesAddressBooks: a purge takes the account's address
// books too, and leaves another account's.
func TestPurgeAccountTakesAddressBooks(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", Options{})
	ctx := context.Background()
	for _, id := range []string{"anna", "bo"} {
		if _, err := s.Deliver(ctx, &store.Delivery{Body: []byte("Subject: x\r\n\r\n"), Targets: []store.Target{{Account: id, Folder: "INBOX"}}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PutCard(ctx, store.Book{Account: id, Name: "contacts"}, "a.vcf", []byte("BEGIN:VCARD\r\nEND:VCARD\r\n"), "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PurgeAccount(ctx, "bo"); err != nil {
		t.Fatal(err)
	}
	if cards, err := s.Cards(ctx, store.Book{Account: "bo", Name: "contacts"}); err != nil || len(cards) != 0 {
		t.Fatalf("bo's cards after purge: %d %v", len(cards), err)
	}
	var books int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM card_books WHERE account = 'bo'`).Scan(&books); err != nil || books != 0 {
		t.Fatalf("bo's books after purge: %d %v", books, err)
	}
	if cards, err := s.Cards(ctx, store.Book{Account: "anna", Name: "contacts"}); err != nil || len(cards) != 1 {
		t.Fatalf("anna's cards after purge: %d %v", len(cards), err)
	}
}

// TestVerifyFindsBrokenInvariants: a sound store passes; a wrong folder
// counter, usage total or reference count, or a changed body, is found,
// and Check (the cheaper check tests end with) finds all but the body.
func TestVerifyFindsBrokenInvariants(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", Options{})
	ctx := context.Background()
	for i := range 5 {
		d := &store.Delivery{Body: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)), Targets: []store.Target{
			{Account: "anna", Folder: "INBOX"}, {Account: "bo", Folder: "INBOX", Flags: []string{store.FlagSeen}},
		}}
		if _, err := s.Deliver(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("sound store: %v", err)
	}
	for _, tc := range []struct {
		name, want   string
		break_, mend string
		checkFinds   bool
	}{
		{"usage", "account usage",
			`UPDATE accounts SET usage = usage + 1 WHERE id = 'anna'`,
			`UPDATE accounts SET usage = usage - 1 WHERE id = 'anna'`, true},
		{"folder counter", "folder counters",
			`UPDATE folders SET unseen = unseen + 1 WHERE account = 'bo'`,
			`UPDATE folders SET unseen = unseen - 1 WHERE account = 'bo'`, true},
		{"reference count", "body reference counts",
			`UPDATE blobs SET refs = refs + 1 WHERE hash = (SELECT hash FROM blobs ORDER BY hash LIMIT 1)`,
			`UPDATE blobs SET refs = refs - 1 WHERE hash = (SELECT hash FROM blobs ORDER BY hash LIMIT 1)`, true},
		{"body", "body content",
			`UPDATE blobs SET body = 'X'::bytea || body WHERE hash = (SELECT hash FROM blobs ORDER BY hash LIMIT 1)`,
			`UPDATE blobs SET body = substr(body, 2) WHERE hash = (SELECT hash FROM blobs ORDER BY hash LIMIT 1)`, false},
	} {
		if _, err := s.pool.Exec(ctx, tc.break_); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s broken: Verify says %v", tc.name, err)
		}
		if err := s.Check(); (err != nil) != tc.checkFinds {
			t.Errorf("%s broken: Check says %v", tc.name, err)
		}
		if _, err := s.pool.Exec(ctx, tc.mend); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatalf("%s mended: %v", tc.name, err)
		}
	}
}
