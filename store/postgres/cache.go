package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// maxCacheEntry bounds one cache entry, as in package store: certificates
// and keys are a few kilobytes; the bound keeps a bug from filling the
// database.
const maxCacheEntry = 1 << 20

// CacheEntry returns the data stored under key by PutCacheEntry;
// errors.Is(err, store.ErrNotFound) when there is none. Cache entries are
// what the server keeps across restarts and shares between the nodes of
// one store (ACME account key and certificates); key names are the
// caller's.
func (s *Store) CacheEntry(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT data FROM cache WHERE key = $1`, []byte(key)).Scan(&out)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cache entry %q: %w", key, err)
	}
	return out, nil
}

// PutCacheEntry durably stores data under key, replacing what was there.
func (s *Store) PutCacheEntry(ctx context.Context, key string, data []byte) error {
	if len(data) > maxCacheEntry {
		return fmt.Errorf("cache entry %q: %w", key, store.ErrCacheEntryTooLarge)
	}
	if key == "" {
		return errors.New("store: empty cache key")
	}
	return s.write(ctx, func(tx pgx.Tx, _ *txState) error {
		_, err := tx.Exec(ctx, `INSERT INTO cache (key, data) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET data = excluded.data`, []byte(key), nonNil(data))
		return err
	})
}

// AddCacheEntry stores data under key unless an entry is there already,
// and returns the entry that is there afterwards: data, or the earlier
// one. Nodes that start together thus agree on one value (a secret): a
// concurrent insert waits for the first and then does nothing.
func (s *Store) AddCacheEntry(ctx context.Context, key string, data []byte) ([]byte, error) {
	if len(data) > maxCacheEntry {
		return nil, fmt.Errorf("cache entry %q: %w", key, store.ErrCacheEntryTooLarge)
	}
	if key == "" {
		return nil, errors.New("store: empty cache key")
	}
	var out []byte
	err := s.write(ctx, func(tx pgx.Tx, _ *txState) error {
		if _, err := tx.Exec(ctx, `INSERT INTO cache (key, data) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
			[]byte(key), nonNil(data)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT data FROM cache WHERE key = $1`, []byte(key)).Scan(&out)
	})
	if err != nil {
		return nil, fmt.Errorf("cache entry %q: %w", key, err)
	}
	return out, nil
}

// DeleteCacheEntry removes key; removing what is not there is no error.
func (s *Store) DeleteCacheEntry(ctx context.Context, key string) error {
	return s.write(ctx, func(tx pgx.Tx, _ *txState) error {
		_, err := tx.Exec(ctx, `DELETE FROM cache WHERE key = $1`, []byte(key))
		return err
	})
}
