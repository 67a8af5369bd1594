package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FolderInfo describes a folder.
type FolderInfo struct {
	ID          uint64
	Name        string
	SpecialUse  string // e.g. `\Sent`; "" for none
	UIDValidity uint32
	UIDNext     UID
	Messages    uint32
	Unseen      uint32
	Size        int64
	// RecentFrom is the first UID no session has yet claimed as \Recent;
	// Recent counts the messages from there (Status only).
	RecentFrom UID
	Recent     uint32
}

// FolderSpec names a folder to create.
type FolderSpec struct {
	Name       string
	SpecialUse string
}

var (
	keyUsage      = []byte("usage")
	keyWarned     = []byte("warned")
	keyNextFolder = []byte("nextfolder")
	keyNames      = []byte("names")
	keyFolders    = []byte("folders")
	keyValidity   = []byte("uidvalidity")
)

// account is an account's bucket and its sub-buckets within one transaction.
type account struct {
	id      string
	b       *bolt.Bucket
	names   *bolt.Bucket
	folders *bolt.Bucket
}

// getAccount opens an account's buckets; with create it makes them.
// Without create, a missing account yields (nil, nil).
func getAccount(tx *bolt.Tx, id string, create bool) (*account, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty account id", ErrInvalid)
	}
	root := tx.Bucket(bucketAccounts)
	b := root.Bucket([]byte(id))
	if b == nil {
		if !create {
			return nil, nil
		}
		var err error
		if b, err = root.CreateBucket([]byte(id)); err != nil {
			return nil, fmt.Errorf("create account %q: %w", id, err)
		}
		if _, err := b.CreateBucket(keyNames); err != nil {
			return nil, err
		}
		if _, err := b.CreateBucket(keyFolders); err != nil {
			return nil, err
		}
	}
	return &account{id: id, b: b, names: b.Bucket(keyNames), folders: b.Bucket(keyFolders)}, nil
}

func (a *account) usage() int64 {
	v := a.b.Get(keyUsage)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func (a *account) addUsage(delta int64) error {
	u := a.usage() + delta
	if u < 0 {
		u = 0
	}
	return a.b.Put(keyUsage, u64(uint64(u)))
}

// folderID returns the id of the named folder, or 0.
func (a *account) folderID(name string) uint64 {
	v := a.names.Get([]byte(name))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (a *account) folder(id uint64) (folderRecord, error) {
	v := a.folders.Get(u64(id))
	if v == nil {
		return folderRecord{}, ErrNoFolder
	}
	return decodeFolder(v)
}

func (a *account) putFolder(id uint64, f *folderRecord) error {
	return a.folders.Put(u64(id), f.encode())
}

func messageBucketKey(id uint64) []byte {
	return append([]byte("m"), u64(id)...)
}

func (a *account) messages(id uint64) *bolt.Bucket {
	return a.b.Bucket(messageBucketKey(id))
}

// createFolder makes a folder and returns its id.
func (a *account) createFolder(tx *bolt.Tx, spec FolderSpec) (uint64, error) {
	if spec.Name == "" {
		return 0, fmt.Errorf("%w: empty folder name", ErrInvalid)
	}
	if a.folderID(spec.Name) != 0 {
		return 0, ErrFolderExists
	}
	var id uint64 = 1
	if v := a.b.Get(keyNextFolder); len(v) == 8 {
		id = binary.BigEndian.Uint64(v)
	}
	if err := a.b.Put(keyNextFolder, u64(id+1)); err != nil {
		return 0, err
	}
	validity, err := nextUIDValidity(tx)
	if err != nil {
		return 0, err
	}
	f := folderRecord{name: spec.Name, specialUse: spec.SpecialUse, uidValidity: validity, uidNext: 1, recentFrom: 1, indexed: true}
	if err := a.putFolder(id, &f); err != nil {
		return 0, err
	}
	if err := a.names.Put([]byte(spec.Name), u64(id)); err != nil {
		return 0, err
	}
	if _, err := a.b.CreateBucket(messageBucketKey(id)); err != nil {
		return 0, err
	}
	if _, err := a.b.CreateBucket(indexBucketKey(id)); err != nil {
		return 0, err
	}
	return id, nil
}

// nextUIDValidity hands out UIDVALIDITY values that never repeat in this
// store, starting from the clock so a recreated store does not reuse old ones.
func nextUIDValidity(tx *bolt.Tx) (uint32, error) {
	meta := tx.Bucket(bucketMeta)
	next := uint32(time.Now().Unix())
	if v := meta.Get(keyValidity); len(v) == 4 {
		if last := binary.BigEndian.Uint32(v); last >= next {
			next = last + 1
		}
	}
	return next, meta.Put(keyValidity, u32(next))
}

func (f *folderRecord) info(id uint64) FolderInfo {
	return FolderInfo{
		ID: id, Name: f.name, SpecialUse: f.specialUse, UIDValidity: f.uidValidity,
		UIDNext: f.uidNext, Messages: f.messages, Unseen: f.unseen, Size: f.size,
		RecentFrom: f.recentFrom,
	}
}

// EnsureFolders creates those of the given folders the account lacks
// (creating the account too). It returns the names it created.
func (s *Store) EnsureFolders(ctx context.Context, accountID string, specs []FolderSpec) ([]string, error) {
	// Most calls find everything present: check without writing first.
	missing := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, err := getAccount(tx, accountID, false)
		if err != nil || a == nil {
			missing = true
			return err
		}
		for _, spec := range specs {
			if a.folderID(spec.Name) == 0 {
				missing = true
			}
		}
		return nil
	})
	if err != nil || !missing {
		return nil, err
	}
	var created []string
	err = s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		created = created[:0]
		a, err := getAccount(tx, accountID, true)
		if err != nil {
			return err
		}
		for _, spec := range specs {
			if a.folderID(spec.Name) != 0 {
				continue
			}
			id, err := a.createFolder(tx, spec)
			if err != nil {
				return fmt.Errorf("create folder %q: %w", spec.Name, err)
			}
			created = append(created, spec.Name)
			w.publish(Change{Kind: ChangeFolders, Account: accountID, FolderID: id, Folder: spec.Name})
		}
		return nil
	})
	return created, err
}

// Folders lists an account's folders, sorted by name. A missing account has
// none.
func (s *Store) Folders(ctx context.Context, accountID string) ([]FolderInfo, error) {
	var out []FolderInfo
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, err := getAccount(tx, accountID, false)
		if err != nil || a == nil {
			return err
		}
		return a.names.ForEach(func(name, idb []byte) error {
			id := binary.BigEndian.Uint64(idb)
			f, err := a.folder(id)
			if err != nil {
				return fmt.Errorf("folder %q: %w", name, err)
			}
			out = append(out, f.info(id))
			return nil
		})
	})
	return out, err
}

// Folder describes one folder.
func (s *Store) Folder(ctx context.Context, accountID, name string) (FolderInfo, error) {
	var info FolderInfo
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, err := getAccount(tx, accountID, false)
		if err != nil {
			return err
		}
		if a == nil {
			return ErrNoFolder
		}
		id := a.folderID(name)
		if id == 0 {
			return ErrNoFolder
		}
		f, err := a.folder(id)
		info = f.info(id)
		return err
	})
	return info, err
}

// CreateFolder creates a folder.
func (s *Store) CreateFolder(ctx context.Context, accountID string, spec FolderSpec) error {
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		a, err := getAccount(tx, accountID, true)
		if err != nil {
			return err
		}
		id, err := a.createFolder(tx, spec)
		if err != nil {
			return err
		}
		w.publish(Change{Kind: ChangeFolders, Account: accountID, FolderID: id, Folder: spec.Name})
		return nil
	})
}

// DeleteFolder deletes a folder and every message in it.
func (s *Store) DeleteFolder(ctx context.Context, accountID, name string) error {
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		a, err := getAccount(tx, accountID, false)
		if err != nil {
			return err
		}
		if a == nil || a.folderID(name) == 0 {
			return ErrNoFolder
		}
		id := a.folderID(name)
		f, err := a.folder(id)
		if err != nil {
			return err
		}
		var rec messageRecord
		err = a.messages(id).ForEach(func(k, v []byte) error {
			if err := decodeMessage(v, &rec, false); err != nil {
				return err
			}
			return unrefBlob(tx, rec.hash)
		})
		if err != nil {
			return fmt.Errorf("delete folder %q: %w", name, err)
		}
		if err := deleteSeenFolder(tx, accountID, id); err != nil {
			return err
		}
		if err := a.b.DeleteBucket(messageBucketKey(id)); err != nil {
			return err
		}
		if a.index(id) != nil {
			if err := a.b.DeleteBucket(indexBucketKey(id)); err != nil {
				return err
			}
		}
		if err := a.folders.Delete(u64(id)); err != nil {
			return err
		}
		if err := a.names.Delete([]byte(name)); err != nil {
			return err
		}
		if err := a.addUsage(-f.size); err != nil {
			return err
		}
		w.publish(Change{Kind: ChangeFolders, Account: accountID, FolderID: id})
		return nil
	})
}

// RenameFolder renames a folder and every folder below it (names starting
// with oldName + delim). UIDVALIDITY and messages stay.
func (s *Store) RenameFolder(ctx context.Context, accountID, oldName, newName string, delim string) error {
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		a, err := getAccount(tx, accountID, false)
		if err != nil {
			return err
		}
		if a == nil || a.folderID(oldName) == 0 {
			return ErrNoFolder
		}
		if newName == "" {
			return fmt.Errorf("%w: empty folder name", ErrInvalid)
		}
		if a.folderID(newName) != 0 {
			return ErrFolderExists
		}
		type move struct {
			from, to string
			id       uint64
		}
		var moves []move
		c := a.names.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			name := string(k)
			if name == oldName {
				moves = append(moves, move{name, newName, binary.BigEndian.Uint64(v)})
			} else if delim != "" && strings.HasPrefix(name, oldName+delim) {
				moves = append(moves, move{name, newName + name[len(oldName):], binary.BigEndian.Uint64(v)})
			}
		}
		for _, m := range moves {
			if a.folderID(m.to) != 0 {
				return fmt.Errorf("rename %q: %w", m.to, ErrFolderExists)
			}
		}
		for _, m := range moves {
			f, err := a.folder(m.id)
			if err != nil {
				return err
			}
			f.name = m.to
			if err := a.putFolder(m.id, &f); err != nil {
				return err
			}
			if err := a.names.Delete([]byte(m.from)); err != nil {
				return err
			}
			if err := a.names.Put([]byte(m.to), u64(m.id)); err != nil {
				return err
			}
			w.publish(Change{Kind: ChangeFolders, Account: accountID, FolderID: m.id, Folder: m.to})
		}
		return nil
	})
}

// Usage returns the bytes an account's messages take.
func (s *Store) Usage(ctx context.Context, accountID string) (int64, error) {
	var u int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, err := getAccount(tx, accountID, false)
		if a != nil {
			u = a.usage()
		}
		return err
	})
	return u, err
}

// subscriptionKey is viewer NUL account NUL folder.
func subscriptionKey(viewer, accountID, folder string) []byte {
	return []byte(viewer + "\x00" + accountID + "\x00" + folder)
}

// SetSubscribed records whether viewer subscribes to a folder of an account.
// Both states are kept, so "unsubscribed" can differ from "never decided".
func (s *Store) SetSubscribed(ctx context.Context, viewer, accountID, folder string, on bool) error {
	v := []byte{0}
	if on {
		v[0] = 1
	}
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		return tx.Bucket(bucketSubs).Put(subscriptionKey(viewer, accountID, folder), v)
	})
}

// Subscriptions returns viewer's explicit subscription decisions for an
// account's folders: folder name -> subscribed.
func (s *Store) Subscriptions(ctx context.Context, viewer, accountID string) (map[string]bool, error) {
	out := make(map[string]bool)
	prefix := subscriptionKey(viewer, accountID, "")
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSubs).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[string(k[len(prefix):])] = len(v) == 1 && v[0] == 1
		}
		return nil
	})
	return out, err
}
