package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/bits"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The folder index keeps what SELECT answers without reading the folder's
// message records, so that selecting a folder of 300,000 messages costs
// about as much as one of 300: which UIDs exist and which of them lack the
// shared \Seen, as bitmaps of uidChunk UIDs each (a folder's UIDs are
// dense, so one bit per UID is smaller than a list and a change rewrites
// one small value), and how many messages carry each keyword. Its bucket
// lives beside the folder's message bucket, and every write of a message
// record updates it in the same transaction.

// uidChunk is the number of UIDs one bitmap covers (512 bytes).
const uidChunk = 4096

// Keys inside a folder's index bucket: a kind byte and the chunk number.
const (
	indexUIDs   = 'u' // the folder's messages
	indexUnseen = 'n' // the messages without the shared \Seen
)

var keyKeywordCounts = []byte("k")

func indexBucketKey(id uint64) []byte {
	return append([]byte("x"), u64(id)...)
}

// index returns a folder's index bucket.
func (a *account) index(id uint64) *bolt.Bucket {
	return a.b.Bucket(indexBucketKey(id))
}

func chunkKey(kind byte, uid UID) []byte {
	return binary.BigEndian.AppendUint32([]byte{kind}, uid/uidChunk)
}

// setBit sets or clears uid's bit in the bitmap of the given kind; a
// bitmap left empty is deleted.
func setBit(ix *bolt.Bucket, kind byte, uid UID, on bool) error {
	key := chunkKey(kind, uid)
	bm := make([]byte, uidChunk/8)
	copy(bm, ix.Get(key))
	i := uid % uidChunk
	if on {
		bm[i/8] |= 1 << (i % 8)
	} else {
		bm[i/8] &^= 1 << (i % 8)
	}
	if !slices.ContainsFunc(bm, func(b byte) bool { return b != 0 }) {
		return ix.Delete(key)
	}
	return ix.Put(key, bm)
}

// indexAdd records a new message with its shared flags.
func indexAdd(ix *bolt.Bucket, uid UID, flags FlagSet) error {
	if err := setBit(ix, indexUIDs, uid, true); err != nil {
		return err
	}
	return indexFlags(ix, uid, FlagSet{Bits: FlagBitSeen}, flags)
}

// indexRemove forgets a message that had the given shared flags.
func indexRemove(ix *bolt.Bucket, uid UID, flags FlagSet) error {
	if err := setBit(ix, indexUIDs, uid, false); err != nil {
		return err
	}
	return indexFlags(ix, uid, flags, FlagSet{Bits: FlagBitSeen})
}

// indexFlags records a change of a message's shared flags.
func indexFlags(ix *bolt.Bucket, uid UID, before, after FlagSet) error {
	if seen := after.Bits&FlagBitSeen != 0; seen != (before.Bits&FlagBitSeen != 0) {
		if err := setBit(ix, indexUnseen, uid, !seen); err != nil {
			return err
		}
	}
	if len(before.Keywords) == 0 && len(after.Keywords) == 0 {
		return nil
	}
	counts, err := decodeKeywordCounts(ix.Get(keyKeywordCounts))
	if err != nil {
		return err
	}
	for _, k := range before.Keywords {
		if counts[k]--; counts[k] <= 0 {
			delete(counts, k)
		}
	}
	for _, k := range after.Keywords {
		counts[k]++
	}
	if len(counts) == 0 {
		return ix.Delete(keyKeywordCounts)
	}
	return ix.Put(keyKeywordCounts, encodeKeywordCounts(counts))
}

func encodeKeywordCounts(counts map[string]int) []byte {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		b = appendBytes(b, []byte(k))
		b = binary.AppendUvarint(b, uint64(counts[k]))
	}
	return b
}

func decodeKeywordCounts(v []byte) (map[string]int, error) {
	counts := make(map[string]int)
	r := reader{b: v}
	for len(r.b) > 0 && r.err == nil {
		k := string(r.bytes())
		counts[k] = int(r.uvarint())
	}
	if r.err != nil {
		return nil, fmt.Errorf("keyword counts: %w", r.err)
	}
	return counts, nil
}

// indexKeywords returns the folder's keywords, sorted, at most
// MaxFolderKeywords of them (the first in sort order).
func indexKeywords(ix *bolt.Bucket) ([]string, error) {
	v := ix.Get(keyKeywordCounts)
	var out []string
	r := reader{b: v}
	for len(r.b) > 0 && r.err == nil && len(out) < MaxFolderKeywords {
		out = append(out, string(r.bytes()))
		r.uvarint()
	}
	if r.err != nil {
		return nil, fmt.Errorf("keyword counts: %w", r.err)
	}
	return out, nil
}

// forEachBit calls fn with every UID set in the bitmaps of a kind, in
// ascending order, until fn returns false.
func forEachBit(ix *bolt.Bucket, kind byte, fn func(UID) bool) {
	c := ix.Cursor()
	for k, v := c.Seek([]byte{kind}); len(k) == 5 && k[0] == kind; k, v = c.Next() {
		base := binary.BigEndian.Uint32(k[1:]) * uidChunk
		for i := 0; i+8 <= len(v); i += 8 {
			w := binary.LittleEndian.Uint64(v[i:])
			for w != 0 {
				if !fn(base + UID(i*8+bits.TrailingZeros64(w))) {
					return
				}
				w &= w - 1
			}
		}
	}
}

// indexUIDList returns the folder's UIDs, ascending; n is a capacity hint.
func indexUIDList(ix *bolt.Bucket, n uint32) []UID {
	out := make([]UID, 0, n)
	forEachBit(ix, indexUIDs, func(uid UID) bool { out = append(out, uid); return true })
	return out
}

// hasBit reports whether uid's bit of a kind is set.
func hasBit(ix *bolt.Bucket, kind byte, uid UID) bool {
	v := ix.Get(chunkKey(kind, uid))
	i := uid % uidChunk
	return len(v) == uidChunk/8 && v[i/8]&(1<<(i%8)) != 0
}

// viewerUnseen counts the messages without \Seen as a viewer with per-user
// \Seen sees them, and finds the first: the shared unseen set, corrected by
// the viewer's own overrides. It reads the folder's overrides, not its
// messages.
func viewerUnseen(tx *bolt.Tx, ix *bolt.Bucket, acc Access, folderID uint64, sharedUnseen uint32) (uint32, UID) {
	own := make(map[UID]bool)
	prefix := seenFolderPrefix(acc.Account, folderID)
	c := tx.Bucket(bucketSeen).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) < len(prefix)+4 || string(k[len(prefix)+4:]) != acc.Viewer || len(v) != 1 {
			continue
		}
		own[binary.BigEndian.Uint32(k[len(prefix):])] = v[0] == 1
	}
	unseen := int64(sharedUnseen)
	var first UID
	for uid, seen := range own {
		if !hasBit(ix, indexUIDs, uid) {
			continue
		}
		shared := !hasBit(ix, indexUnseen, uid)
		switch {
		case seen && !shared:
			unseen--
		case !seen && shared:
			unseen++
			if first == 0 || uid < first {
				first = uid
			}
		}
	}
	forEachBit(ix, indexUnseen, func(uid UID) bool {
		if first != 0 && uid > first {
			return false
		}
		if !own[uid] {
			first = uid
			return false
		}
		return true
	})
	return uint32(max(unseen, 0)), first
}

// buildIndex makes a folder's index from its message records: for folders
// stored before the index existed, or whose index is missing.
func buildIndex(a *account, id uint64, f *folderRecord) error {
	if a.index(id) != nil {
		if err := a.b.DeleteBucket(indexBucketKey(id)); err != nil {
			return err
		}
	}
	ix, err := a.b.CreateBucket(indexBucketKey(id))
	if err != nil {
		return err
	}
	bitmaps := map[string][]byte{}
	counts := make(map[string]int)
	set := func(kind byte, uid UID) {
		key := string(chunkKey(kind, uid))
		bm := bitmaps[key]
		if bm == nil {
			bm = make([]byte, uidChunk/8)
			bitmaps[key] = bm
		}
		i := uid % uidChunk
		bm[i/8] |= 1 << (i % 8)
	}
	var rec messageRecord
	err = a.messages(id).ForEach(func(k, v []byte) error {
		if err := decodeMessage(v, &rec, false); err != nil {
			return fmt.Errorf("message %d: %w", binary.BigEndian.Uint32(k), err)
		}
		uid := binary.BigEndian.Uint32(k)
		set(indexUIDs, uid)
		if rec.flags.Bits&FlagBitSeen == 0 {
			set(indexUnseen, uid)
		}
		for _, kw := range rec.flags.Keywords {
			counts[kw]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, bm := range bitmaps {
		if err := ix.Put([]byte(k), bm); err != nil {
			return err
		}
	}
	if len(counts) > 0 {
		if err := ix.Put(keyKeywordCounts, encodeKeywordCounts(counts)); err != nil {
			return err
		}
	}
	f.indexed = true
	return a.putFolder(id, f)
}

// buildMissingIndexes gives every folder without an index one, a folder
// per transaction. Open calls it, so every folder a session sees has one.
func (s *Store) buildMissingIndexes() error {
	type todo struct {
		account string
		id      uint64
	}
	var work []todo
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEachBucket(func(name []byte) error {
			a, err := getAccount(tx, string(name), false)
			if err != nil || a == nil || a.folders == nil {
				return err
			}
			return a.folders.ForEach(func(k, v []byte) error {
				f, err := decodeFolder(v)
				if err != nil {
					return err
				}
				if !f.indexed || a.index(binary.BigEndian.Uint64(k)) == nil {
					work = append(work, todo{string(name), binary.BigEndian.Uint64(k)})
				}
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	for _, t := range work {
		err := s.db.Update(func(tx *bolt.Tx) error {
			a, f, err := openFolderID(tx, t.account, t.id)
			if err != nil {
				return err
			}
			return buildIndex(a, t.id, &f)
		})
		if err != nil {
			return fmt.Errorf("index folder %d of %q: %w", t.id, t.account, err)
		}
		s.log.Info("store: indexed folder", "account", t.account, "folder", t.id)
	}
	return nil
}
