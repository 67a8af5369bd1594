package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Refreshing: when the protocol layer's idea of Options.Analyze changes
// (the IMAP cache gained a search block and a text signature, and later
// moved them to the body's search data), the messages stored before keep
// their old results until RefreshMeta computes new ones from their bodies,
// a batch per commit, behind a per-folder mark kept in the folder's index:
// a restart continues where the last run stopped, and a folder whose mark
// is at its end costs one read.

// refreshScan bounds how many records one batch looks at, so one read
// transaction stays short even where nothing is stale.
const refreshScan = 4096

func refreshMarkKey(tag string) []byte { return append([]byte("r"), tag...) }

// RefreshMeta recomputes Options.Analyze's result for every message of the
// store whose stored result stale reports out of date, and
// Options.SearchData's for every body that has none (giving each record
// the id of its body's search data), at most batch
// messages per commit, folder by folder, until all are done or ctx ends.
// tag names the change the refresh is for: a new tag starts over.
func (s *Store) RefreshMeta(ctx context.Context, tag string, stale func(meta []byte) bool, batch int) error {
	if s.analyze == nil && s.search == nil {
		return nil
	}
	type folder struct {
		account string
		id      uint64
	}
	var folders []folder
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEachBucket(func(name []byte) error {
			a, err := getAccount(tx, string(name), false)
			if err != nil || a == nil {
				return err
			}
			return a.folders.ForEach(func(k, _ []byte) error {
				folders = append(folders, folder{string(name), binary.BigEndian.Uint64(k)})
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	for _, f := range folders {
		for done := false; !done; {
			done, err = s.refreshBatch(ctx, f.account, f.id, tag, stale, batch)
			if errors.Is(err, ErrNoFolder) {
				break // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("refresh folder %d of %q: %w", f.id, f.account, err)
			}
		}
	}
	return nil
}

// staleMessage is a message a batch rewrites: its meta when newMeta, its
// body's search data when newSearch, and its record's search id.
type staleMessage struct {
	uid                UID
	hash               [32]byte
	newMeta, newSearch bool
	meta, search       []byte
}

// refreshBatch refreshes up to batch stale messages of a folder from its
// mark on and reports whether the folder is done.
func (s *Store) refreshBatch(ctx context.Context, accountID string, folderID uint64, tag string, stale func([]byte) bool, batch int) (bool, error) {
	var todo []staleMessage
	var bodies [][]byte
	var from, next UID
	done, scanned := false, 0
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, f, err := openFolderID(tx, accountID, folderID)
		if err != nil {
			return err
		}
		ix := a.index(folderID)
		if ix == nil {
			return fmt.Errorf("no index: %w", errCorrupt)
		}
		from = 1
		if v := ix.Get(refreshMarkKey(tag)); len(v) == 4 {
			from = binary.BigEndian.Uint32(v)
		}
		next, done = f.uidNext, true
		c := a.messages(folderID).Cursor()
		refs := tx.Bucket(bucketBlobRefs)
		planned := map[[32]byte]bool{} // bodies whose search data this batch makes
		var rec messageRecord
		for k, v := c.Seek(u32(from)); k != nil; k, v = c.Next() {
			if scanned == refreshScan || len(todo) == batch {
				next, done = binary.BigEndian.Uint32(k), false
				break
			}
			scanned++
			if err := decodeMessage(v, &rec, false); err != nil {
				return err
			}
			m := staleMessage{uid: binary.BigEndian.Uint32(k), hash: rec.hash}
			m.newMeta = s.analyze != nil && stale(rec.meta)
			needID := s.search != nil && rec.searchID == 0
			if !m.newMeta && !needID {
				continue
			}
			m.newSearch = needID && !planned[rec.hash] && getBlobRef(refs, rec.hash).searchID == 0
			planned[rec.hash] = planned[rec.hash] || m.newSearch
			if !m.newMeta && !m.newSearch {
				todo = append(todo, m) // the record only takes its body's id
				bodies = append(bodies, nil)
				continue
			}
			body := tx.Bucket(bucketBlobs).Get(rec.hash[:])
			if body == nil {
				return fmt.Errorf("message %d body: %w", m.uid, errCorrupt)
			}
			todo = append(todo, m)
			bodies = append(bodies, append([]byte(nil), body...))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if len(todo) == 0 && (next == from || done && scanned < refreshScan) {
		// Nothing to write: a short scan is cheaper to repeat at the next
		// start than a commit per folder at every start.
		return done, nil
	}
	for i := range todo {
		if todo[i].newMeta {
			todo[i].meta = s.analyze(bodies[i])
		}
		if todo[i].newSearch {
			todo[i].search = append([]byte{}, s.search(bodies[i])...)
		}
	}
	err = s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		a, _, err := openFolderID(tx, accountID, folderID)
		if err != nil {
			return err
		}
		for _, m := range todo {
			if err := s.refreshMessage(tx, a, folderID, &m, stale); err != nil {
				return err
			}
		}
		return a.index(folderID).Put(refreshMarkKey(tag), u32(next))
	})
	return done, err
}

// refreshMessage stores what refreshBatch computed for m, unless the
// message or its body changed meanwhile.
func (s *Store) refreshMessage(tx *bolt.Tx, a *account, folderID uint64, m *staleMessage, stale func([]byte) bool) error {
	refs := tx.Bucket(bucketBlobRefs)
	ref := getBlobRef(refs, m.hash)
	if m.newSearch && ref.refs > 0 && ref.searchID == 0 {
		id, err := putSearchData(tx, m.search)
		if err != nil {
			return err
		}
		ref.searchID = id
		if err := putBlobRef(refs, m.hash, ref); err != nil {
			return err
		}
	}
	msgs := a.messages(folderID)
	v := msgs.Get(u32(m.uid))
	if v == nil {
		return nil // expunged meanwhile
	}
	var rec messageRecord
	if err := decodeMessage(v, &rec, true); err != nil {
		return err
	}
	if rec.hash != m.hash {
		return nil
	}
	newMeta := m.newMeta && stale(rec.meta)
	newID := rec.searchID == 0 && ref.searchID != 0
	if !newMeta && !newID {
		return nil
	}
	if newMeta {
		rec.meta = m.meta
	}
	rec.searchID = ref.searchID
	return msgs.Put(u32(m.uid), rec.encode())
}
