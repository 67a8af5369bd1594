package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxProblems bounds how many problems a verification reports.
const maxProblems = 20

// Verify checks the store's own invariants on top of bbolt's page checks:
// every folder's counters (messages, unseen, size, UIDNEXT) match its
// messages, every account's usage is the sum of its folders, every body's
// reference count is the number of messages that use it and its content
// matches its hash, and every queued message has its body. It reads one consistent snapshot; writes go on.
func (s *Store) Verify(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error { return verifyTx(tx, true) })
}

// VerifyFile runs Verify on the store file at path without opening it as
// a store (a backup about to be restored): read-only, no lock file. With
// hashBodies false it leaves out hashing every body, the costliest part,
// for a copy just taken from a sound store (a fresh backup).
func VerifyFile(ctx context.Context, path string, hashBodies bool) (err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	// bbolt reads the file through a memory map: a page beyond the end of
	// a damaged file is a fault, which must become an error, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: reading %s failed: %v", errCorrupt, path, r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: %s is cut short: %d bytes of %d", errCorrupt, path, fi.Size(), tx.Size())
		}
		return verifyTx(tx, hashBodies)
	})
}

// verification collects problems up to maxProblems.
type verification struct {
	problems   []error
	refs       map[[32]byte]uint64
	searchIDs  map[[32]byte]uint64 // the search data id the records name, per body
	hashBodies bool
}

func (v *verification) addf(format string, args ...any) {
	if len(v.problems) < maxProblems {
		v.problems = append(v.problems, fmt.Errorf(format, args...))
	}
}

func verifyTx(tx *bolt.Tx, hashBodies bool) error {
	v := &verification{refs: make(map[[32]byte]uint64), searchIDs: make(map[[32]byte]uint64), hashBodies: hashBodies}
	for err := range tx.Check() {
		v.addf("bbolt: %w", err)
	}
	if len(v.problems) > 0 {
		return fmt.Errorf("%w: %w", errCorrupt, errors.Join(v.problems...))
	}
	for _, name := range topBuckets {
		if tx.Bucket(name) == nil {
			v.addf("bucket %q missing", name)
		}
	}
	if len(v.problems) == 0 {
		tx.Bucket(bucketAccounts).ForEach(func(k, _ []byte) error {
			v.account(tx, string(k))
			return nil
		})
		v.blobs(tx)
		v.queue(tx)
	}
	if len(v.problems) > 0 {
		return fmt.Errorf("%w: %w", errCorrupt, errors.Join(v.problems...))
	}
	return nil
}

func (v *verification) account(tx *bolt.Tx, id string) {
	a, err := getAccount(tx, id, false)
	if err != nil || a == nil || a.names == nil || a.folders == nil {
		v.addf("account %q: incomplete", id)
		return
	}
	var total int64
	named := 0
	a.names.ForEach(func(name, idb []byte) error {
		named++
		if len(idb) != 8 {
			v.addf("account %q folder %q: bad id", id, name)
			return nil
		}
		fid := binary.BigEndian.Uint64(idb)
		f, err := a.folder(fid)
		if err != nil {
			v.addf("account %q folder %q: %v", id, name, err)
			return nil
		}
		if f.name != string(name) {
			v.addf("account %q folder %d: named %q in its record, %q in the index", id, fid, f.name, name)
		}
		total += f.size
		v.folder(a, fid, &f)
		return nil
	})
	if n := a.folders.Stats().KeyN; n != named {
		v.addf("account %q: %d folder records, %d names", id, n, named)
	}
	if u := a.usage(); u != total {
		v.addf("account %q: usage %d, its folders hold %d", id, u, total)
	}
}

func (v *verification) folder(a *account, fid uint64, f *folderRecord) {
	b := a.messages(fid)
	if b == nil {
		v.addf("account %q folder %q: no messages bucket", a.id, f.name)
		return
	}
	var msgs, unseen uint32
	var size int64
	var rec messageRecord
	b.ForEach(func(k, data []byte) error {
		if len(k) != 4 {
			v.addf("account %q folder %q: bad UID key", a.id, f.name)
			return nil
		}
		uid := binary.BigEndian.Uint32(k)
		if err := decodeMessage(data, &rec, false); err != nil {
			v.addf("account %q folder %q UID %d: %v", a.id, f.name, uid, err)
			return nil
		}
		if uid >= f.uidNext {
			v.addf("account %q folder %q: UID %d not below UIDNEXT %d", a.id, f.name, uid, f.uidNext)
		}
		msgs++
		size += rec.size
		if rec.flags.Bits&FlagBitSeen == 0 {
			unseen++
		}
		v.refs[rec.hash]++
		if rec.searchID != 0 {
			if id, ok := v.searchIDs[rec.hash]; ok && id != rec.searchID {
				v.addf("body %x: its messages name search data %d and %d", rec.hash[:6], id, rec.searchID)
			}
			v.searchIDs[rec.hash] = rec.searchID
		}
		return nil
	})
	if msgs != f.messages || unseen != f.unseen || size != f.size {
		v.addf("account %q folder %q: counters say %d messages, %d unseen, %d bytes; it holds %d, %d, %d",
			a.id, f.name, f.messages, f.unseen, f.size, msgs, unseen, size)
	}
}

// blobs compares the stored reference counts with the references found.
func (v *verification) blobs(tx *bolt.Tx) {
	blobs, refs := tx.Bucket(bucketBlobs), tx.Bucket(bucketBlobRefs)
	searchIDs := map[uint64]bool{}
	refs.ForEach(func(k, val []byte) error {
		var h [32]byte
		copy(h[:], k)
		n, _ := binary.Uvarint(val)
		if len(k) != 32 || n != v.refs[h] {
			v.addf("body %x: reference count %d, used by %d messages", k[:min(6, len(k))], n, v.refs[h])
		}
		if blobs.Get(k) == nil {
			v.addf("body %x: counted but not stored", k[:min(6, len(k))])
		}
		delete(v.refs, h)
		id := getBlobRef(refs, h).searchID
		if id != 0 {
			searchIDs[id] = true
		}
		if named, ok := v.searchIDs[h]; ok && named != id {
			v.addf("body %x: its messages name search data %d, it has %d", k[:6], named, id)
		}
		return nil
	})
	for h, n := range v.refs {
		v.addf("body %x: used by %d messages, not counted", h[:6], n)
	}
	tx.Bucket(bucketBlobSearch).ForEach(func(k, _ []byte) error {
		if len(k) != 8 || !searchIDs[binary.BigEndian.Uint64(k)] {
			v.addf("search data %x: no body has it", k)
		}
		return nil
	})
	blobs.ForEach(func(k, body []byte) error {
		if refs.Get(k) == nil {
			v.addf("body %x: stored without references", k[:min(6, len(k))])
		}
		// Bodies are kept under their hash: a changed byte shows.
		if !v.hashBodies {
			return nil
		}
		if h := hashBody(body); string(h[:]) != string(k) {
			v.addf("body %x: content does not match its hash", k[:min(6, len(k))])
		}
		return nil
	})
}

// queue checks that every queued message decodes and has its body.
func (v *verification) queue(tx *bolt.Tx) {
	q, bodies := tx.Bucket(bucketQueue), tx.Bucket(bucketQueueBody)
	q.ForEach(func(k, val []byte) error {
		var m QueuedMessage
		if err := json.Unmarshal(val, &m); err != nil {
			v.addf("queued message %x: %v", k, err)
		}
		if bodies.Get(k) == nil {
			v.addf("queued message %x: no body", k)
		}
		return nil
	})
	bodies.ForEach(func(k, _ []byte) error {
		if q.Get(k) == nil {
			v.addf("queued body %x: no message", k)
		}
		return nil
	})
}
