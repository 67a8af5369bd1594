package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// Accounts lists every account the store holds, sorted by id, with what
// each holds: also those of mailboxes no longer in the configuration.
func (s *Store) Accounts(ctx context.Context) ([]store.AccountStats, error) {
	var out []store.AccountStats
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT a.id, a.usage, count(f.id), coalesce(sum(f.messages), 0)
			FROM accounts a LEFT JOIN folders f ON f.account = a.id
			GROUP BY a.id, a.usage ORDER BY a.id`)
		if err != nil {
			return err
		}
		var st store.AccountStats
		_, err = pgx.ForEachRow(rows, []any{&st.ID, &st.Size, &st.Folders, &st.Messages}, func() error {
			out = append(out, st)
			return nil
		})
		return err
	})
	return out, err
}

// purgeByID delete what an account holds besides its bodies, each with
// the account's id as $1. Per-user \Seen is deleted for the account's own
// messages, as in bbolt; subscriptions both by the account and to its
// folders. folder_seq stays: folder ids start again at 1 if the account
// comes back, and a folder's change sequence must never repeat for a
// listener. The account's row goes last, with its usage.
var purgeByID = []string{
	`DELETE FROM seen WHERE account = $1`,
	`DELETE FROM messages WHERE account = $1`,
	`DELETE FROM folders WHERE account = $1`,
	`DELETE FROM subscriptions WHERE viewer = $1 OR account = $1`,
	`DELETE FROM imported WHERE account = $1`,
	`DELETE FROM cards WHERE account = $1`,
	`DELETE FROM card_books WHERE account = $1`,
	`DELETE FROM accounts WHERE id = $1`,
}

// purgeByPrefix delete the memories keyed by the callers (automatic
// replies, connected accounts), whose keys start with the account's id and
// a NUL byte, $1.
var purgeByPrefix = []string{
	`DELETE FROM autoreplies WHERE substr(key, 1, length($1::bytea)) = $1`,
	`DELETE FROM remote WHERE substr(key, 1, length($1::bytea)) = $1`,
	`DELETE FROM remote_filed WHERE substr(key, 1, length($1::bytea)) = $1`,
}

// PurgeAccount deletes everything the store holds for an account: its
// folders and messages (bodies lose a reference each, and go with their
// last), per-user \Seen and subscriptions by it and of it, automatic-reply
// memories, connected account progress, import memories, address books
// and usage, in one durable commit. ErrNotFound when the store holds
// nothing for it. The caller makes sure the account is no longer in use.
func (s *Store) PurgeAccount(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		accounts, err := lockAccounts(ctx, tx, false, id)
		if err != nil {
			return err
		}
		if accounts[id] == nil {
			return store.ErrNotFound
		}
		rows, err := tx.Query(ctx, `SELECT hash, count(*) FROM messages WHERE account = $1 GROUP BY hash ORDER BY hash`, id)
		if err != nil {
			return err
		}
		counts, err := collectCounts(rows)
		if err != nil {
			return err
		}
		if err := unrefBlobs(ctx, tx, counts); err != nil {
			return fmt.Errorf("purge %s: %w", id, err)
		}
		rows, err = tx.Query(ctx, `SELECT id FROM folders WHERE account = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		folders, err := pgx.CollectRows(rows, pgx.RowTo[uint64])
		if err != nil {
			return err
		}
		for _, q := range purgeByPrefix {
			if _, err := tx.Exec(ctx, q, []byte(id+"\x00")); err != nil {
				return fmt.Errorf("purge %s: %w", id, err)
			}
		}
		for _, q := range purgeByID {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("purge %s: %w", id, err)
			}
		}
		// Sessions with one of its folders selected learn it is gone; the
		// account-wide change is bbolt's.
		for _, f := range folders {
			w.publish(store.Change{Kind: store.ChangeFolders, Account: id, FolderID: f})
		}
		w.publish(store.Change{Kind: store.ChangeFolders, Account: id})
		return nil
	})
}

// errImported aborts the commit of a message imported before.
var errImported = errors.New("store: imported before")

// Import files a message brought in from other mail software into one
// folder of an account, unless a message with the same digest was imported
// into the account before: then it files nothing and answers false. The
// digest is the caller's (of the folder and the message), so a second run
// of the same import files nothing twice, also when two run at once on two
// nodes. A full account gives ErrQuota.
func (s *Store) Import(ctx context.Context, t store.Target, digest []byte, body []byte, date time.Time) (bool, error) {
	var seen bool
	err := s.read(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM imported WHERE account = $1 AND digest = $2)`,
			t.Account, digest).Scan(&seen)
	})
	if err != nil || seen {
		return false, err
	}
	_, err = s.deliverWith(ctx, &store.Delivery{Body: body, Date: date, Targets: []store.Target{t}}, func(tx pgx.Tx, res *store.DeliveryResult) error {
		if err := res.Targets[0].Err; err != nil {
			return err
		}
		// A concurrent run of the same import may have filed it meanwhile:
		// the insert waits for its commit and then inserts nothing.
		tag, err := tx.Exec(ctx, `INSERT INTO imported (account, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			t.Account, digest)
		if err == nil && tag.RowsAffected() == 0 {
			err = errImported
		}
		return err
	})
	switch {
	case errors.Is(err, errImported):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("import into %s/%s: %w", t.Account, t.Folder, err)
	}
	return true, nil
}

// Backup refuses with store.ErrUnsupported: a PostgreSQL store is backed
// up, and restored, with the database's own tools (SPEC §12), which also
// know about replicas and point-in-time recovery.
func (s *Store) Backup(ctx context.Context, write func(size int64, snapshot io.WriterTo) error) error {
	return fmt.Errorf("backup: %w: the store is in PostgreSQL; back it up with the database's own tools "+
		"(pg_dump, or pg_basebackup with WAL archiving) and restore it with theirs (pg_restore)", store.ErrUnsupported)
}
