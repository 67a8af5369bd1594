package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bodies are stored once per content, under their SHA-256, with a reference
// count kept apart so counting never rewrites a large value.

func hashBody(body []byte) [32]byte { return sha256.Sum256(body) }

// refBlob adds one reference to a body, storing it if it is new.
func refBlob(tx *bolt.Tx, hash [32]byte, body []byte) error {
	refs := tx.Bucket(bucketBlobRefs)
	n := blobRefs(refs, hash)
	if n == 0 {
		if err := tx.Bucket(bucketBlobs).Put(hash[:], body); err != nil {
			return fmt.Errorf("store body: %w", err)
		}
	}
	return refs.Put(hash[:], binary.AppendUvarint(nil, n+1))
}

// addBlobRef adds one reference to a body that is known to be stored.
func addBlobRef(tx *bolt.Tx, hash [32]byte) error {
	refs := tx.Bucket(bucketBlobRefs)
	n := blobRefs(refs, hash)
	if n == 0 {
		return fmt.Errorf("body %x: %w", hash[:6], errCorrupt)
	}
	return refs.Put(hash[:], binary.AppendUvarint(nil, n+1))
}

// unrefBlob drops one reference, deleting the body with the last one.
func unrefBlob(tx *bolt.Tx, hash [32]byte) error {
	refs := tx.Bucket(bucketBlobRefs)
	n := blobRefs(refs, hash)
	if n <= 1 {
		if err := refs.Delete(hash[:]); err != nil {
			return err
		}
		return tx.Bucket(bucketBlobs).Delete(hash[:])
	}
	return refs.Put(hash[:], binary.AppendUvarint(nil, n-1))
}

func blobRefs(refs *bolt.Bucket, hash [32]byte) uint64 {
	v := refs.Get(hash[:])
	if v == nil {
		return 0
	}
	n, _ := binary.Uvarint(v)
	return n
}

// BlobStats reports how many distinct bodies are stored and their bytes.
func (s *Store) BlobStats() (count int, bytes int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			count++
			bytes += int64(len(v))
			return nil
		})
	})
	return count, bytes, err
}
