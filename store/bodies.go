package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bodies reads the text of each message of uids (ascending) that exists,
// all in one read of the store, and then calls fn with each in UID order.
// The texts share one allocation and belong to the caller. A message not
// in the folder (expunged) is left out; a folder that does not exist is
// ErrNoFolder. It is Body for a FETCH of many messages, where a read per
// message cost more than the sending; the caller bounds what one call
// holds in memory by the sizes Messages gave it.
func (s *Store) Bodies(ctx context.Context, acc Access, folderID uint64, uids []UID, fn func(uid UID, body []byte) error) error {
	var (
		buf   []byte
		found []UID
		ends  []int
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, _, err := openFolderID(tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		msgs, blobs := a.messages(folderID), tx.Bucket(bucketBlobs)
		type part struct{ prefix, body []byte }
		parts := make([]part, 0, len(uids))
		size := 0
		for _, uid := range uids {
			v := msgs.Get(u32(uid))
			if v == nil {
				continue
			}
			var rec messageRecord
			if err := decodeMessage(v, &rec, false); err != nil {
				return err
			}
			body := blobs.Get(rec.hash[:])
			if body == nil {
				return fmt.Errorf("message %d body: %w", uid, errCorrupt)
			}
			parts = append(parts, part{rec.prefix, body})
			found = append(found, uid)
			size += len(rec.prefix) + len(body)
		}
		// The texts live in the mapped file only during the read: one copy
		// into one buffer takes them out.
		buf = make([]byte, 0, size)
		ends = make([]int, len(parts))
		for i, p := range parts {
			buf = append(append(buf, p.prefix...), p.body...)
			ends[i] = len(buf)
		}
		return nil
	})
	if err != nil {
		return err
	}
	start := 0
	for i, uid := range found {
		if err := fn(uid, buf[start:ends[i]:ends[i]]); err != nil {
			return err
		}
		start = ends[i]
	}
	return nil
}
