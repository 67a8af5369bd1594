package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Address books: cards (vCards) kept byte for byte, by mailbox, book and
// card name. Each book has a change counter; every put or delete raises it
// and stamps the card with it, so a client that last saw counter n learns
// what changed since by the stamps above n. A deleted card stays as a
// tombstone (no data) so its deletion can be reported.
//
// Keys: bucketCards: account NUL book NUL name -> stamp(8) modtime(8)
// deleted(1) data; bucketCardBooks: account NUL book -> counter(8).

// Book names one address book: the mailbox that owns it and its name.
type Book struct {
	Account string
	Name    string
}

// Card is one stored vCard.
type Card struct {
	Name     string // the resource name in the book, e.g. "abc.vcf"
	Data     []byte // exactly as received
	ETag     string // changes whenever Data changes
	Modified time.Time
	// Stamp is the book's counter at the card's last change.
	Stamp uint64
	// Deleted marks a tombstone, reported only by CardChanges.
	Deleted bool
}

const cardHeader = 17

func (b Book) valid() bool {
	return b.Account != "" && b.Name != "" && bytes.IndexByte([]byte(b.Account+b.Name), 0) < 0
}

func (b Book) prefix() []byte { return []byte(b.Account + "\x00" + b.Name + "\x00") }

func (b Book) key() []byte { return []byte(b.Account + "\x00" + b.Name) }

func cardETag(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}

func encodeCard(stamp uint64, mod time.Time, deleted bool, data []byte) []byte {
	v := make([]byte, cardHeader, cardHeader+len(data))
	binary.BigEndian.PutUint64(v, stamp)
	binary.BigEndian.PutUint64(v[8:], uint64(mod.UnixNano()))
	if deleted {
		v[16] = 1
	}
	return append(v, data...)
}

func decodeCard(name string, v []byte) (Card, error) {
	if len(v) < cardHeader {
		return Card{}, fmt.Errorf("card %q: %w: short record", name, ErrInvalid)
	}
	c := Card{
		Name:     name,
		Stamp:    binary.BigEndian.Uint64(v),
		Modified: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))),
		Deleted:  v[16] == 1,
		Data:     bytes.Clone(v[cardHeader:]),
	}
	if !c.Deleted {
		c.ETag = cardETag(c.Data)
	}
	return c, nil
}

// nextStamp raises the book's counter and returns the new value.
func nextStamp(tx *bolt.Tx, book Book) (uint64, error) {
	b := tx.Bucket(bucketCardBooks)
	var n uint64
	if v := b.Get(book.key()); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	return n, b.Put(book.key(), u64(n))
}

// PutCard stores data as the card name of book, replacing any card of
// that name, and returns it once committed. ifMatch, when not "", is the
// ETag the caller expects to replace ("*": any existing card); a mismatch
// is ErrConflict. created reports whether the card is new.
func (s *Store) PutCard(ctx context.Context, book Book, name string, data []byte, ifMatch string, now time.Time) (card Card, created bool, err error) {
	if !book.valid() || name == "" || len(data) == 0 {
		return Card{}, false, fmt.Errorf("put card: %w", ErrInvalid)
	}
	key := append(book.prefix(), name...)
	err = s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		cards := tx.Bucket(bucketCards)
		old, exists, err := lookupCard(cards, key, name)
		if err != nil {
			return err
		}
		if err := checkMatch(old, exists, ifMatch); err != nil {
			return err
		}
		stamp, err := nextStamp(tx, book)
		if err != nil {
			return err
		}
		created = !exists
		card = Card{Name: name, Data: data, ETag: cardETag(data), Modified: now, Stamp: stamp}
		return cards.Put(key, encodeCard(stamp, now, false, data))
	})
	if err != nil {
		return Card{}, false, fmt.Errorf("put card %s/%s: %w", book.Name, name, err)
	}
	return card, created, nil
}

// lookupCard reads a live card; a tombstone counts as absent.
func lookupCard(cards *bolt.Bucket, key []byte, name string) (Card, bool, error) {
	v := cards.Get(key)
	if v == nil {
		return Card{}, false, nil
	}
	c, err := decodeCard(name, v)
	if err != nil || c.Deleted {
		return Card{}, false, err
	}
	return c, true, nil
}

// checkMatch applies an If-Match condition ("" = none, "*" = any card).
func checkMatch(old Card, exists bool, ifMatch string) error {
	switch {
	case ifMatch == "":
		return nil
	case ifMatch == "*" && exists:
		return nil
	case exists && ifMatch == old.ETag:
		return nil
	}
	return ErrConflict
}

// Card returns the live card name of book, or ErrNotFound.
func (s *Store) Card(ctx context.Context, book Book, name string) (Card, error) {
	var c Card
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var ok bool
		var err error
		c, ok, err = lookupCard(tx.Bucket(bucketCards), append(book.prefix(), name...), name)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Card{}, fmt.Errorf("card %s/%s: %w", book.Name, name, err)
	}
	return c, nil
}

// Cards returns the live cards of book, by name.
func (s *Store) Cards(ctx context.Context, book Book) ([]Card, error) {
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
func (s *Store) DeleteCard(ctx context.Context, book Book, name, ifMatch string, now time.Time) error {
	key := append(book.prefix(), name...)
	err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		cards := tx.Bucket(bucketCards)
		old, exists, err := lookupCard(cards, key, name)
		if err != nil {
			return err
		}
		if !exists {
			return ErrNotFound
		}
		if err := checkMatch(old, exists, ifMatch); err != nil {
			return err
		}
		stamp, err := nextStamp(tx, book)
		if err != nil {
			return err
		}
		return cards.Put(key, encodeCard(stamp, now, true, nil))
	})
	if err != nil {
		return fmt.Errorf("delete card %s/%s: %w", book.Name, name, err)
	}
	return nil
}

// CardChanges returns every card of book changed after the counter value
// since (tombstones included, except with since 0), and the counter now.
func (s *Store) CardChanges(ctx context.Context, book Book, since uint64) (changes []Card, now uint64, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketCardBooks).Get(book.key()); len(v) == 8 {
			now = binary.BigEndian.Uint64(v)
		}
		prefix := book.prefix()
		c := tx.Bucket(bucketCards).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			card, err := decodeCard(string(k[len(prefix):]), v)
			if err != nil {
				return err
			}
			if card.Stamp > since && !(since == 0 && card.Deleted) {
				changes = append(changes, card)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("card changes %s: %w", book.Name, err)
	}
	return changes, now, nil
}
