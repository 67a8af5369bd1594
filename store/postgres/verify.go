package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// invariants are the store's own bookkeeping, each a query counting the
// rows that break it. The schema's keys and NOT NULLs hold the rest (a
// queued message always has its body, a message its folder).
var invariants = []struct{ what, query string }{
	// Counts that differ, bodies without messages, messages without a body.
	{"body reference counts", `SELECT count(*) FROM blobs b
		FULL JOIN (SELECT hash, count(*) n FROM messages GROUP BY hash) m ON m.hash = b.hash
		WHERE b.refs IS DISTINCT FROM m.n`},
	{"folder counters", `SELECT count(*) FROM folders f
		LEFT JOIN (SELECT account, folder, count(*) n, sum(size) sz,
			count(*) FILTER (WHERE flags & 1 = 0) unseen, max(uid) maxuid
			FROM messages GROUP BY account, folder) m
		ON m.account = f.account AND m.folder = f.id
		WHERE f.messages <> coalesce(m.n, 0) OR f.size <> coalesce(m.sz, 0)
			OR f.unseen <> coalesce(m.unseen, 0) OR f.uid_next <= coalesce(m.maxuid, 0)`},
	{"account usage", `SELECT count(*) FROM accounts a
		WHERE usage <> (SELECT coalesce(sum(size), 0) FROM folders f WHERE f.account = a.id)`},
	// A card stamped above its book's counter would be missed by a client
	// that synchronised at that counter.
	{"card stamps", `SELECT count(*) FROM cards c
		LEFT JOIN card_books b ON b.account = c.account AND b.book = c.book
		WHERE c.stamp > coalesce(b.counter, 0)`},
}

// bodyHashes finds bodies whose content no longer matches the hash they
// are kept under: reading every body, it is Verify's alone.
var bodyHashes = struct{ what, query string }{
	"body content", `SELECT count(*) FROM blobs WHERE sha256(body) <> hash`,
}

// Check verifies the store's own bookkeeping: reference counts of bodies,
// folder counters and account usage agree with the messages, and no card
// is stamped past its book's counter. Tests call it when they end.
func (s *Store) Check() error {
	return s.verify(context.Background(), false)
}

// Verify checks the store's own invariants, as the bbolt store's Verify
// does: every folder's counters (messages, unseen, size, UIDNEXT) match its
// messages, every account's usage is the sum of its folders, every body's
// reference count is the number of messages that use it and its content
// matches its hash, and no card is stamped past its book's counter. It
// reads one consistent snapshot; writes go on. The database's own damage
// (pages, indexes) is PostgreSQL's to find (amcheck, data checksums).
func (s *Store) Verify(ctx context.Context) error {
	return s.verify(ctx, true)
}

func (s *Store) verify(ctx context.Context, hashBodies bool) error {
	checks := invariants
	if hashBodies {
		checks = append(checks[:len(checks):len(checks)], bodyHashes)
	}
	var problems []error
	err := s.read(ctx, func(tx pgx.Tx) error {
		for _, c := range checks {
			var bad int
			if err := tx.QueryRow(ctx, c.query).Scan(&bad); err != nil {
				return fmt.Errorf("check %s: %w", c.what, err)
			}
			if bad > 0 {
				problems = append(problems, fmt.Errorf("check %s: %d inconsistent", c.what, bad))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(problems...)
}
