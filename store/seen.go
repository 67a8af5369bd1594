package store

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Per-user \Seen: in a folder with SeenPerUser access, each viewer's \Seen
// is an override of the shared flag, kept under
// account NUL folderID(8) uid(4) viewer. A viewer without an override sees
// the shared flag, so switching a mailbox between modes loses nothing.

func seenFolderPrefix(accountID string, folderID uint64) []byte {
	b := append([]byte(accountID), 0)
	return binary.BigEndian.AppendUint64(b, folderID)
}

func seenKey(accountID string, folderID uint64, uid UID, viewer string) []byte {
	b := seenFolderPrefix(accountID, folderID)
	b = binary.BigEndian.AppendUint32(b, uid)
	return append(b, viewer...)
}

// seenOverride returns viewer's override for a message, if any.
func seenOverride(tx *bolt.Tx, accountID string, folderID uint64, uid UID, viewer string) (seen, ok bool) {
	v := tx.Bucket(bucketSeen).Get(seenKey(accountID, folderID, uid, viewer))
	if len(v) != 1 {
		return false, false
	}
	return v[0] == 1, true
}

func setSeenOverride(tx *bolt.Tx, accountID string, folderID uint64, uid UID, viewer string, seen bool) error {
	v := []byte{0}
	if seen {
		v[0] = 1
	}
	return tx.Bucket(bucketSeen).Put(seenKey(accountID, folderID, uid, viewer), v)
}

// deleteSeenPrefix removes every override under prefix.
func deleteSeenPrefix(tx *bolt.Tx, prefix []byte) error {
	c := tx.Bucket(bucketSeen).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func deleteSeenFolder(tx *bolt.Tx, accountID string, folderID uint64) error {
	return deleteSeenPrefix(tx, seenFolderPrefix(accountID, folderID))
}

func deleteSeenMessage(tx *bolt.Tx, accountID string, folderID uint64, uid UID) error {
	p := binary.BigEndian.AppendUint32(seenFolderPrefix(accountID, folderID), uid)
	return deleteSeenPrefix(tx, p)
}

// seenOverrides returns every viewer's override for a message, or nil.
func seenOverrides(tx *bolt.Tx, accountID string, folderID uint64, uid UID) map[string]bool {
	p := binary.BigEndian.AppendUint32(seenFolderPrefix(accountID, folderID), uid)
	var out map[string]bool
	c := tx.Bucket(bucketSeen).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if out == nil {
			out = make(map[string]bool)
		}
		out[string(k[len(p):])] = len(v) == 1 && v[0] == 1
	}
	return out
}

// effectiveFlags applies access's view of \Seen to a message's shared flags.
func effectiveFlags(tx *bolt.Tx, acc Access, folderID uint64, uid UID, shared FlagSet) FlagSet {
	if !acc.SeenPerUser {
		return shared
	}
	if seen, ok := seenOverride(tx, acc.Account, folderID, uid, acc.Viewer); ok {
		return shared.WithSeen(seen)
	}
	return shared
}
