package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// AccountStats is what an account holds, for the administrator.
type AccountStats struct {
	ID       string
	Size     int64 // bytes, as counted against the quota
	Messages int64
	Folders  int
}

// Accounts lists every account the store holds, sorted by id, with what
// each holds: also those of mailboxes no longer in the configuration.
func (s *Store) Accounts(ctx context.Context) ([]AccountStats, error) {
	var out []AccountStats
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			a, err := getAccount(tx, string(k), false)
			if err != nil || a == nil {
				return err
			}
			st := AccountStats{ID: string(k), Size: a.usage()}
			err = a.folders.ForEach(func(_, v []byte) error {
				f, err := decodeFolder(v)
				st.Folders++
				st.Messages += int64(f.messages)
				return err
			})
			out = append(out, st)
			return err
		})
	})
	return out, err
}

// PurgeAccount deletes everything the store holds for an account: its
// folders and messages (bodies lose a reference each), per-user \Seen and
// subscriptions by it and of it, automatic-reply memories, connected
// account progress and import memories. ErrNotFound when the store holds
// nothing for it. The caller makes sure the account is no longer in use.
func (s *Store) PurgeAccount(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty account id", ErrInvalid)
	}
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		a, err := getAccount(tx, id, false)
		if err != nil {
			return err
		}
		if a == nil {
			return ErrNotFound
		}
		var rec messageRecord
		err = a.folders.ForEach(func(k, _ []byte) error {
			return a.messages(binary.BigEndian.Uint64(k)).ForEach(func(_, v []byte) error {
				if err := decodeMessage(v, &rec, false); err != nil {
					return err
				}
				return unrefBlob(tx, rec.hash)
			})
		})
		if err != nil {
			return fmt.Errorf("purge %s: %w", id, err)
		}
		if err := tx.Bucket(bucketAccounts).DeleteBucket([]byte(id)); err != nil {
			return err
		}
		prefix := []byte(id + "\x00")
		for _, name := range [][]byte{bucketSeen, bucketReplies, bucketRemote, bucketRemoteFiled, bucketSubs, bucketImported, bucketCards, bucketCardBooks} {
			if err := deletePrefix(tx.Bucket(name), prefix); err != nil {
				return err
			}
		}
		// Subscriptions are kept by viewer first: drop those of every
		// viewer to this account's folders too.
		infix := []byte("\x00" + id + "\x00")
		subs := tx.Bucket(bucketSubs)
		var drop [][]byte
		err = subs.ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, 0); i >= 0 && bytes.HasPrefix(k[i:], infix) {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range drop {
			if err == nil {
				err = subs.Delete(k)
			}
		}
		if err != nil {
			return err
		}
		w.publish(Change{Kind: ChangeFolders, Account: id})
		return nil
	})
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
