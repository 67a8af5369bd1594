package store

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// maxCacheEntry bounds one cache entry: certificates and keys are a few
// kilobytes; the bound keeps a bug from filling the store.
const maxCacheEntry = 1 << 20

// ErrCacheEntryTooLarge is returned for an entry over 1 MiB.
var ErrCacheEntryTooLarge = errors.New("store: cache entry too large")

// CacheEntry returns the data stored under key by PutCacheEntry;
// errors.Is(err, ErrNotFound) when there is none. Cache entries are what
// the server keeps across restarts and shares between nodes of one store
// (ACME account key and certificates); key names are the caller's.
func (s *Store) CacheEntry(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCache).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...) // bytes die with the transaction
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache entry %q: %w", key, err)
	}
	return out, nil
}

// PutCacheEntry durably stores data under key, replacing what was there.
func (s *Store) PutCacheEntry(ctx context.Context, key string, data []byte) error {
	if len(data) > maxCacheEntry {
		return fmt.Errorf("cache entry %q: %w", key, ErrCacheEntryTooLarge)
	}
	if key == "" {
		return errors.New("store: empty cache key")
	}
	v := append([]byte(nil), data...)
	return s.update(ctx, func(tx *bolt.Tx, _ *txState) error {
		return tx.Bucket(bucketCache).Put([]byte(key), v)
	})
}

// AddCacheEntry stores data under key unless an entry is there already,
// and returns the entry that is there afterwards: data, or the earlier
// one. Nodes that start together thus agree on one value (a secret).
func (s *Store) AddCacheEntry(ctx context.Context, key string, data []byte) ([]byte, error) {
	if len(data) > maxCacheEntry {
		return nil, fmt.Errorf("cache entry %q: %w", key, ErrCacheEntryTooLarge)
	}
	if key == "" {
		return nil, errors.New("store: empty cache key")
	}
	var out []byte
	err := s.update(ctx, func(tx *bolt.Tx, _ *txState) error {
		b := tx.Bucket(bucketCache)
		if v := b.Get([]byte(key)); v != nil {
			out = append([]byte(nil), v...) // bytes die with the transaction
			return nil
		}
		out = append([]byte(nil), data...)
		return b.Put([]byte(key), out)
	})
	if err != nil {
		return nil, fmt.Errorf("cache entry %q: %w", key, err)
	}
	return out, nil
}

// DeleteCacheEntry removes key; removing what is not there is no error.
func (s *Store) DeleteCacheEntry(ctx context.Context, key string) error {
	return s.update(ctx, func(tx *bolt.Tx, _ *txState) error {
		return tx.Bucket(bucketCache).Delete([]byte(key))
	})
}
