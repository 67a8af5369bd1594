package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// TestMigrateConcurrently: nodes starting at once on an empty database
// create the schema once, and a later start changes nothing.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DB(t, cluster)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Options{DSN: dsn})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	openTest(t, dsn, Options{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT version FROM schema_version ORDER BY version`)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || len(versions) != len(migrations) || versions[len(versions)-1] != len(migrations) {
		t.Fatalf("schema versions %v %v", versions, err)
	}
}

// TestNewerSchemaRefused: a postkasse older than the database's schema does
// not start on it.
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DB(t, cluster)
	openTest(t, dsn, Options{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO schema_version VALUES ($1)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{DSN: dsn}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open on a newer schema: %v", err)
	}
}

// TestCheckFindsInconsistency: Check, which every test runs at its end,
// notices bookkeeping that disagrees with the messages.
func TestCheckFindsInconsistency(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), Options{DSN: pgtest.DB(t, cluster)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, breakIt := range []string{
		`SELECT 1`, // nothing broken
		`UPDATE blobs SET refs = refs + 1`,
		`UPDATE folders SET unseen = 0`,
		`UPDATE folders SET uid_next = 1`,
		`UPDATE accounts SET usage = usage + 1`,
		`DELETE FROM blobs`,
		`UPDATE card_books SET counter = 0`,
	} {
		if _, err := s.pool.Exec(ctx, `TRUNCATE blobs, messages, folders, accounts, cards, card_books`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Deliver(ctx, &store.Delivery{Body: body(1), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PutCard(ctx, store.Book{Account: "anna", Name: "b"}, "c.vcf", []byte("BEGIN:VCARD\r\nEND:VCARD\r\n"), "", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(ctx, breakIt); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(); (err == nil) != (breakIt == `SELECT 1`) {
			t.Errorf("Check after %q: %v", breakIt, err)
		}
	}
}
