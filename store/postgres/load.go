package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"postkasse.dev/postkasse/store"
)

// copiedTables are the tables a copy fills from store.Records. The schema's
// other tables begin afresh in a copy: schema_version is the schema's own,
// and changes and folder_seq are the change feed's, which nodes read only
// for changes made while they run (TestCopiedTables keeps the lists whole).
var copiedTables = []string{
	"meta", "accounts", "folders", "blobs", "messages", "seen", "subscriptions", "queue",
	"autoreplies", "remote", "remote_filed", "imported", "card_books", "cards", "cache",
}

// freshTables are the schema's tables a copy does not fill, and why.
var freshTables = map[string]string{
	"schema_version": "the schema's own version, made by the migration",
	"changes":        "the change feed: nodes read only changes made while they run",
	"folder_seq":     "the change feed's per-folder sequences",
}

// Batches of a load: a COPY is sent when it has this many rows or bytes.
const (
	loadBatchRows  = 1000
	loadBatchBytes = 8 << 20
)

// Loader writes the records of an Export (of either backend) into an empty
// PostgreSQL database, all in one transaction: until Commit nothing of the
// copy is visible, and a load that fails or is abandoned leaves the
// database as empty as it was. Rows go in with COPY, in batches, so memory
// stays bounded whatever the store's size. A Loader is used by one
// goroutine.
type Loader struct {
	pool *pgxpool.Pool
	tx   pgx.Tx
	meta int64 // the last UIDVALIDITY handed out

	// The batch being gathered for one table.
	table string
	cols  []string
	rows  [][]any
	size  int
}

// NewLoader starts loading into the database dsn names, creating the
// schema if it is missing. It refuses a database that holds any part of a
// store (store.ErrNotEmpty: a copy goes into an empty one), and one a postkasse node is
// connected to (store.ErrInUse). The tables it fills stay locked against
// other writers until Commit or Abort.
func NewLoader(ctx context.Context, dsn string) (*Loader, error) {
	pool, err := connectForCopy(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("load: migrate schema: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("load: %w", err)
	}
	l := &Loader{pool: pool, tx: tx}
	if err := l.lockEmpty(ctx); err != nil {
		l.Abort()
		return nil, fmt.Errorf("load: %w", err)
	}
	return l, nil
}

// lockEmpty locks the tables the copy fills against other writers (not
// waiting: another copy or a node is busy there) and checks they are
// empty.
func (l *Loader) lockEmpty(ctx context.Context) error {
	if _, err := l.tx.Exec(ctx, `LOCK TABLE `+strings.Join(copiedTables, ", ")+` IN EXCLUSIVE MODE NOWAIT`); err != nil {
		return fmt.Errorf("another copy or a postkasse node is writing to the database: %w", err)
	}
	for _, table := range copiedTables[1:] { // meta always has its row
		var full bool
		if err := l.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+`)`).Scan(&full); err != nil {
			return err
		}
		if full {
			return fmt.Errorf("%w: table %s has rows, a copy goes into an empty database", store.ErrNotEmpty, table)
		}
	}
	return nil
}

// Put stores one record. Records must come in the order store.Record
// describes.
func (l *Loader) Put(ctx context.Context, r store.Record) error {
	if l.tx == nil {
		return fmt.Errorf("load: %w", store.ErrClosed)
	}
	if m, ok := r.(*store.MetaRecord); ok {
		l.meta = max(l.meta, int64(m.LastUIDValidity)) // set in Commit
		return nil
	}
	table, cols, row, size, err := loadRow(r)
	if err != nil {
		return fmt.Errorf("load: %T: %w", r, err)
	}
	if table != l.table {
		if err := l.flush(ctx); err != nil {
			return err
		}
		l.table, l.cols = table, cols
	}
	l.rows = append(l.rows, row)
	if l.size += size; len(l.rows) >= loadBatchRows || l.size >= loadBatchBytes {
		return l.flush(ctx)
	}
	return nil
}

// flush sends the gathered rows with COPY.
func (l *Loader) flush(ctx context.Context) error {
	if len(l.rows) == 0 {
		return nil
	}
	_, err := l.tx.CopyFrom(ctx, pgx.Identifier{l.table}, l.cols, pgx.CopyFromRows(l.rows))
	if err != nil {
		return fmt.Errorf("load: %s: %w", l.table, err)
	}
	l.rows, l.size = l.rows[:0], 0
	return nil
}

// loadRow turns a record into a row of its table, with about the bytes it
// takes. The record's slices are the exporter's: the row has copies.
func loadRow(r store.Record) (table string, cols []string, row []any, size int, err error) {
	switch r := r.(type) {
	case *store.BodyRecord:
		// No search data (nil) stays NULL, for RefreshMeta to compute.
		return "blobs", []string{"hash", "refs", "body", "search"},
			[]any{bytes.Clone(r.Hash[:]), 0, nonNil(bytes.Clone(r.Body)), bytes.Clone(r.Search)}, len(r.Body) + len(r.Search), nil
	case *store.AccountRecord:
		return "accounts", []string{"id", "warned", "next_folder"}, []any{r.ID, r.Warned, int64(r.NextFolder)}, 64, nil
	case *store.FolderRecord:
		return "folders", []string{"account", "id", "name", "special_use", "uid_validity", "uid_next", "recent_from"},
			[]any{r.Account, int64(r.ID), r.Name, r.SpecialUse, int64(r.UIDValidity), int64(r.UIDNext), int64(r.RecentFrom)}, 64, nil
	case *store.MessageRecord:
		fs := store.ParseFlags(r.Flags)
		return "messages", []string{"account", "folder", "uid", "flags", "keywords", "date_ns", "size", "hash", "prefix", "meta"},
			[]any{r.Account, int64(r.Folder), int64(r.UID), fs.Bits, keywordList(fs), r.Date.UnixNano(), r.Size,
				bytes.Clone(r.Hash[:]), nonNil(bytes.Clone(r.Prefix)), nonNil(bytes.Clone(r.Meta))}, 128 + len(r.Prefix) + len(r.Meta), nil
	case *store.SeenRecord:
		return "seen", []string{"account", "folder", "uid", "viewer", "seen"}, []any{r.Account, int64(r.Folder), int64(r.UID), r.Viewer, r.Seen}, 32, nil
	case *store.SubscriptionRecord:
		return "subscriptions", []string{"viewer", "account", "folder", "subscribed"}, []any{r.Viewer, r.Account, r.Folder, r.Subscribed}, 32, nil
	case *store.QueueRecord:
		msg, err := json.Marshal(&r.Message)
		return "queue", []string{"id", "msg", "next_attempt_ns", "body"},
			[]any{int64(r.Message.ID), string(msg), r.Message.NextAttempt.UnixNano(), nonNil(bytes.Clone(r.Body))}, len(r.Body) + len(msg), err
	}
	return loadMemoryRow(r)
}

// loadMemoryRow is loadRow for memories, address books and the cache.
func loadMemoryRow(r store.Record) (table string, cols []string, row []any, size int, err error) {
	switch r := r.(type) {
	case *store.AutoReplyRecord:
		return "autoreplies", []string{"key", "last_ns"}, []any{bytes.Clone(r.Key), r.Last.UnixNano()}, 32, nil
	case *store.RemoteRecord:
		return "remote", []string{"key", "uid_validity", "last_uid"}, []any{bytes.Clone(r.Key), int64(r.State.UIDValidity), int64(r.State.LastUID)}, 32, nil
	case *store.RemoteFiledRecord:
		return "remote_filed", []string{"key", "digest"}, []any{bytes.Clone(r.Key), bytes.Clone(r.Digest)}, 64, nil
	case *store.ImportedRecord:
		return "imported", []string{"account", "digest"}, []any{r.Account, bytes.Clone(r.Digest)}, 64, nil
	case *store.CardBookRecord:
		return "card_books", []string{"account", "book", "counter"}, []any{r.Book.Account, r.Book.Name, int64(r.Counter)}, 32, nil
	case *store.CardRecord:
		c := r.Card
		return "cards", []string{"account", "book", "name", "stamp", "modified_ns", "deleted", "data"},
			[]any{r.Book.Account, r.Book.Name, []byte(c.Name), int64(c.Stamp), c.Modified.UnixNano(), c.Deleted, nonNil(bytes.Clone(c.Data))}, len(c.Data), nil
	case *store.CacheRecord:
		return "cache", []string{"key", "data"}, []any{[]byte(r.Key), nonNil(bytes.Clone(r.Data))}, len(r.Data), nil
	}
	return "", nil, nil, 0, fmt.Errorf("%w: unknown record", store.ErrInvalid)
}

// finishing sets what follows from the records: body reference counts
// (dropping bodies no message uses), folder counters, account usage, the
// last UIDVALIDITY ($1, or the highest a folder has) and the queue's ids.
var finishing = []string{
	`UPDATE blobs b SET refs = m.n FROM (SELECT hash, count(*) n FROM messages GROUP BY hash) m WHERE b.hash = m.hash`,
	`DELETE FROM blobs WHERE refs = 0`,
	`UPDATE folders f SET messages = m.n, unseen = m.unseen, size = m.sz
		FROM (SELECT account, folder, count(*) n, count(*) FILTER (WHERE flags & 1 = 0) unseen, sum(size) sz
			FROM messages GROUP BY account, folder) m
		WHERE f.account = m.account AND f.id = m.folder`,
	`UPDATE accounts a SET usage = f.sz FROM (SELECT account, sum(size) sz FROM folders GROUP BY account) f WHERE a.id = f.account`,
	`SELECT setval('queue_id_seq', (SELECT max(id) FROM queue)) WHERE EXISTS (SELECT 1 FROM queue)`,
}

// Commit finishes the copy, checks the store's invariants (bodies' hashes
// included) inside the same transaction, and commits it: the copy appears
// whole or not at all.
func (l *Loader) Commit(ctx context.Context) error {
	if l.tx == nil {
		return fmt.Errorf("load: %w", store.ErrClosed)
	}
	err := l.finish(ctx)
	if err == nil {
		err = l.tx.Commit(ctx)
	}
	if err == nil {
		l.tx = nil
		// Fresh statistics for the planner rather than waiting for
		// autovacuum to notice the new rows. The copy is whole without
		// them: a failure here is no failure of the copy.
		l.pool.Exec(ctx, `ANALYZE`)
	}
	l.Abort() // a transaction still open is rolled back
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

func (l *Loader) finish(ctx context.Context) error {
	if err := l.flush(ctx); err != nil {
		return err
	}
	for _, q := range finishing {
		if _, err := l.tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	_, err := l.tx.Exec(ctx, `UPDATE meta SET value = greatest(value, $1, (SELECT coalesce(max(uid_validity), 0) FROM folders))
		WHERE key = 'uidvalidity'`, l.meta)
	if err != nil {
		return err
	}
	var problems []error
	for _, c := range append(invariants[:len(invariants):len(invariants)], bodyHashes) {
		var bad int
		if err := l.tx.QueryRow(ctx, c.query).Scan(&bad); err != nil {
			return fmt.Errorf("check %s: %w", c.what, err)
		}
		if bad > 0 {
			problems = append(problems, fmt.Errorf("check %s: %d inconsistent", c.what, bad))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("check of the copy: %w", errors.Join(problems...))
	}
	return nil
}

// Abort abandons the load: its transaction is rolled back, the database
// left as it was. It may be called after Commit, and then does nothing.
func (l *Loader) Abort() {
	if l.pool == nil {
		return
	}
	if l.tx != nil {
		l.tx.Rollback(context.Background())
		l.tx = nil
	}
	l.pool.Close()
	l.pool = nil
}
