package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// Address books, as in package store: cards kept byte for byte by mailbox,
// book and card name; each book has a change counter (card_books) that
// every put or delete raises and stamps on the card, and a deleted card
// stays as a tombstone (deleted, no data) so CardChanges can report it.
//
// A write first raises the book's counter: the upsert locks the book's row
// until the commit, so writes to one book, from any node, take their turns,
// and the card read after it is the newest committed. A write that then
// fails (ErrConflict, ErrNotFound) rolls the counter back with the rest.

// validBook is store.Book's rule: an owner and a name, no NUL byte (which
// text columns cannot hold either).
func validBook(b store.Book) bool {
	return b.Account != "" && b.Name != "" && !strings.ContainsRune(b.Account+b.Name, 0)
}

// cardETag is package store's: it must not change, or every client would
// fetch every card again.
func cardETag(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}

// raiseCounter raises the book's counter, locking its row, and returns the
// new value.
func raiseCounter(ctx context.Context, tx pgx.Tx, book store.Book) (uint64, error) {
	var n int64
	err := tx.QueryRow(ctx, `INSERT INTO card_books AS b (account, book, counter) VALUES ($1, $2, 1)
		ON CONFLICT (account, book) DO UPDATE SET counter = b.counter + 1 RETURNING counter`,
		book.Account, book.Name).Scan(&n)
	return uint64(n), err
}

// cardColumns are read by scanCard.
const cardColumns = `name, stamp, modified_ns, deleted, data`

func scanCard(row pgx.Row) (store.Card, error) {
	var c store.Card
	var name []byte
	var stamp, mod int64
	if err := row.Scan(&name, &stamp, &mod, &c.Deleted, &c.Data); err != nil {
		return store.Card{}, err
	}
	c.Name, c.Stamp, c.Modified = string(name), uint64(stamp), time.Unix(0, mod)
	if c.Deleted {
		c.Data = nil
	} else {
		c.ETag = cardETag(c.Data)
	}
	return c, nil
}

// liveCard reads a live card; a tombstone counts as absent.
func liveCard(ctx context.Context, q querier, book store.Book, name string) (store.Card, bool, error) {
	c, err := scanCard(q.QueryRow(ctx, `SELECT `+cardColumns+` FROM cards
		WHERE account = $1 AND book = $2 AND name = $3`, book.Account, book.Name, []byte(name)))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && c.Deleted {
		return store.Card{}, false, nil
	}
	return c, err == nil, err
}

// checkMatch applies an If-Match condition ("" = none, "*" = any card).
func checkMatch(old store.Card, exists bool, ifMatch string) error {
	switch {
	case ifMatch == "":
		return nil
	case ifMatch == "*" && exists:
		return nil
	case exists && ifMatch == old.ETag:
		return nil
	}
	return store.ErrConflict
}

// putCardRow writes a card or its tombstone under stamp.
func putCardRow(ctx context.Context, tx pgx.Tx, book store.Book, c store.Card) error {
	_, err := tx.Exec(ctx, `INSERT INTO cards (account, book, name, stamp, modified_ns, deleted, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (account, book, name) DO UPDATE SET stamp = excluded.stamp,
			modified_ns = excluded.modified_ns, deleted = excluded.deleted, data = excluded.data`,
		book.Account, book.Name, []byte(c.Name), int64(c.Stamp), c.Modified.UnixNano(), c.Deleted, nonNil(c.Data))
	return err
}

// PutCard stores data as the card name of book, replacing any card of
// that name, and returns it once committed. ifMatch, when not "", is the
// ETag the caller expects to replace ("*": any existing card); a mismatch
// is ErrConflict. created reports whether the card is new.
func (s *Store) PutCard(ctx context.Context, book store.Book, name string, data []byte, ifMatch string, now time.Time) (card store.Card, created bool, err error) {
	if !validBook(book) || name == "" || len(data) == 0 {
		return store.Card{}, false, fmt.Errorf("put card: %w", store.ErrInvalid)
	}
	err = s.write(ctx, func(tx pgx.Tx, w *txState) error {
		stamp, err := raiseCounter(ctx, tx, book)
		if err != nil {
			return err
		}
		old, exists, err := liveCard(ctx, tx, book, name)
		if err != nil {
			return err
		}
		if err := checkMatch(old, exists, ifMatch); err != nil {
			return err
		}
		created = !exists
		card = store.Card{Name: name, Data: data, ETag: cardETag(data), Modified: now, Stamp: stamp}
		return putCardRow(ctx, tx, book, card)
	})
	if err != nil {
		return store.Card{}, false, fmt.Errorf("put card %s/%s: %w", book.Name, name, err)
	}
	return card, created, nil
}

// Card returns the live card name of book, or ErrNotFound.
func (s *Store) Card(ctx context.Context, book store.Book, name string) (store.Card, error) {
	var c store.Card
	err := store.ErrNotFound
	if validBook(book) {
		err = s.read(ctx, func(tx pgx.Tx) error {
			var ok bool
			var err error
			c, ok, err = liveCard(ctx, tx, book, name)
			if err == nil && !ok {
				err = store.ErrNotFound
			}
			return err
		})
	}
	if err != nil {
		return store.Card{}, fmt.Errorf("card %s/%s: %w", book.Name, name, err)
	}
	return c, nil
}

// Cards returns the live cards of book, by name.
func (s *Store) Cards(ctx context.Context, book store.Book) ([]store.Card, error) {
	changes, _, err := s.CardChanges(ctx, book, 0)
	if err != nil {
		return nil, err
	}
	out := changes[:0]
	for _, c := range changes {
		if !c.Deleted {
			out = append(out, c)
		}
	}
	return out, nil
}

// DeleteCard removes the card name of book, leaving a tombstone for
// CardChanges; ifMatch is as for PutCard. ErrNotFound if there is none.
func (s *Store) DeleteCard(ctx context.Context, book store.Book, name, ifMatch string, now time.Time) error {
	err := store.ErrNotFound
	if validBook(book) {
		err = s.write(ctx, func(tx pgx.Tx, w *txState) error {
			stamp, err := raiseCounter(ctx, tx, book)
			if err != nil {
				return err
			}
			old, exists, err := liveCard(ctx, tx, book, name)
			if err != nil {
				return err
			}
			if !exists {
				return store.ErrNotFound
			}
			if err := checkMatch(old, exists, ifMatch); err != nil {
				return err
			}
			return putCardRow(ctx, tx, book, store.Card{Name: name, Stamp: stamp, Modified: now, Deleted: true})
		})
	}
	if err != nil {
		return fmt.Errorf("delete card %s/%s: %w", book.Name, name, err)
	}
	return nil
}

// CardChanges returns every card of book changed after the counter value
// since (tombstones included, except with since 0), and the counter now.
func (s *Store) CardChanges(ctx context.Context, book store.Book, since uint64) (changes []store.Card, now uint64, err error) {
	if !validBook(book) {
		return nil, 0, nil
	}
	since = min(since, math.MaxInt64) // stamps are bigint
	err = s.read(ctx, func(tx pgx.Tx) error {
		changes = nil
		var n int64
		err := tx.QueryRow(ctx, `SELECT coalesce((SELECT counter FROM card_books WHERE account = $1 AND book = $2), 0)`,
			book.Account, book.Name).Scan(&n)
		if err != nil {
			return err
		}
		now = uint64(n)
		rows, err := tx.Query(ctx, `SELECT `+cardColumns+` FROM cards
			WHERE account = $1 AND book = $2 AND stamp > $3 AND NOT ($3 = 0 AND deleted) ORDER BY name`,
			book.Account, book.Name, int64(since))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanCard(rows)
			if err != nil {
				return err
			}
			changes = append(changes, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("card changes %s: %w", book.Name, err)
	}
	return changes, now, nil
}
