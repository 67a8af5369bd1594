package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bodies are stored once per content, under their SHA-256, with a reference
// count kept apart so counting never rewrites a large value. A body's search
// data (Options.SearchData) is kept under an id of its own, taken from a
// sequence when the body is stored: the bodies delivered one after another
// to a folder have ascending ids, so a scan of a folder's messages in UID
// order reads their search data in key order too, not from all over the
// file as a lookup by hash would (at 100,000 messages, SEARCH took 4 times
// as long that way). The id is kept beside the reference count and in every
// copy's record.

func hashBody(body []byte) [32]byte { return sha256.Sum256(body) }

// blobRef is a body's entry in bucketBlobRefs: its reference count, then
// the id of its search data (0: none; entries written before search data
// have only the count).
type blobRef struct {
	refs     uint64
	searchID uint64
}

func getBlobRef(refs *bolt.Bucket, hash [32]byte) blobRef {
	v := refs.Get(hash[:])
	if v == nil {
		return blobRef{}
	}
	r := reader{b: v}
	out := blobRef{refs: r.uvarint()}
	if len(r.b) > 0 {
		out.searchID = r.uvarint()
	}
	return out
}

func putBlobRef(refs *bolt.Bucket, hash [32]byte, r blobRef) error {
	v := binary.AppendUvarint(nil, r.refs)
	if r.searchID != 0 {
		v = binary.AppendUvarint(v, r.searchID)
	}
	return refs.Put(hash[:], v)
}

// refBlob adds one reference to a body, storing it if it is new, and
// returns the id of its search data. search is Options.SearchData's result
// (nil when unset): a body that has no search data yet gets it.
func refBlob(tx *bolt.Tx, hash [32]byte, body, search []byte) (uint64, error) {
	refs := tx.Bucket(bucketBlobRefs)
	r := getBlobRef(refs, hash)
	if r.refs == 0 {
		if err := tx.Bucket(bucketBlobs).Put(hash[:], body); err != nil {
			return 0, fmt.Errorf("store body: %w", err)
		}
	}
	if r.searchID == 0 && search != nil {
		id, err := putSearchData(tx, search)
		if err != nil {
			return 0, err
		}
		r.searchID = id
	}
	r.refs++
	return r.searchID, putBlobRef(refs, hash, r)
}

// putSearchData stores a body's search data under a new id.
func putSearchData(tx *bolt.Tx, search []byte) (uint64, error) {
	b := tx.Bucket(bucketBlobSearch)
	id, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := b.Put(u64(id), search); err != nil {
		return 0, fmt.Errorf("store search data: %w", err)
	}
	return id, nil
}

// addBlobRef adds one reference to a body that is known to be stored.
func addBlobRef(tx *bolt.Tx, hash [32]byte) error {
	refs := tx.Bucket(bucketBlobRefs)
	r := getBlobRef(refs, hash)
	if r.refs == 0 {
		return fmt.Errorf("body %x: %w", hash[:6], errCorrupt)
	}
	r.refs++
	return putBlobRef(refs, hash, r)
}

// unrefBlob drops one reference, deleting the body and its search data
// with the last one.
func unrefBlob(tx *bolt.Tx, hash [32]byte) error {
	refs := tx.Bucket(bucketBlobRefs)
	r := getBlobRef(refs, hash)
	if r.refs > 1 {
		r.refs--
		return putBlobRef(refs, hash, r)
	}
	if err := refs.Delete(hash[:]); err != nil {
		return err
	}
	if r.searchID != 0 {
		if err := tx.Bucket(bucketBlobSearch).Delete(u64(r.searchID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketBlobs).Delete(hash[:])
}

// searchReader reads search data by id through one cursor: ids that come
// in ascending order, as a folder's messages mostly have them, cost a step
// each instead of a descent from the root.
type searchReader struct {
	c    *bolt.Cursor
	k, v []byte
}

func newSearchReader(tx *bolt.Tx) *searchReader {
	return &searchReader{c: tx.Bucket(bucketBlobSearch).Cursor()}
}

// get returns the search data under id; nil when there is none.
func (r *searchReader) get(id uint64) []byte {
	if r.k != nil && binary.BigEndian.Uint64(r.k) < id {
		r.k, r.v = r.c.Next()
	}
	if r.k == nil || binary.BigEndian.Uint64(r.k) != id {
		r.k, r.v = r.c.Seek(u64(id))
	}
	if r.k == nil || binary.BigEndian.Uint64(r.k) != id {
		return nil
	}
	return r.v
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

// SearchDataStats reports how many bodies have search data stored
// (Options.SearchData) and its bytes: one entry per body, however many
// copies of it the folders hold.
func (s *Store) SearchDataStats() (count int, bytes int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobSearch).ForEach(func(k, v []byte) error {
			count++
			bytes += int64(len(v))
			return nil
		})
	})
	return count, bytes, err
}
