package store

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// FlagOp says how StoreFlags combines the given flags with a message's.
type FlagOp uint8

// Flag operations, as IMAP STORE has them.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// StoreFlags changes the flags of the given messages (ascending UIDs) and
// returns every message that exists with its flags as the viewer now sees
// them. With per-user \Seen, \Seen changes only the viewer's own view.
func (s *Store) StoreFlags(ctx context.Context, acc Access, folderID uint64, uids []UID, op FlagOp, flags []string) ([]ChangedMessage, error) {
	change := ParseFlags(flags)
	touchesShared := change.Bits&^FlagBitSeen != 0 || len(change.Keywords) > 0 || op == FlagsSet
	if acc.ReadOnly && (!acc.SeenPerUser || touchesShared && !SeenOnly(op, change)) {
		return nil, ErrReadOnly
	}
	var out []ChangedMessage
	err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		out = out[:0]
		a, f, err := openFolderID(tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		msgs := a.messages(folderID)
		shared := Change{Kind: ChangeFlags, Account: acc.Account, FolderID: folderID, Folder: f.name, Origin: acc.Origin}
		var rec messageRecord
		for _, uid := range uids {
			v := msgs.Get(u32(uid))
			if v == nil {
				continue
			}
			if err := decodeMessage(v, &rec, true); err != nil {
				return fmt.Errorf("message %d: %w", uid, err)
			}
			before := effectiveFlags(tx, acc, folderID, uid, rec.flags)
			after := ApplyFlags(before, op, change)
			if acc.SeenPerUser {
				if err := s.storeOwnSeen(tx, w, acc, f.name, folderID, uid, before, after); err != nil {
					return err
				}
				// The shared record keeps its own \Seen.
				after.Bits = after.Bits&^FlagBitSeen | rec.flags.Bits&FlagBitSeen
			}
			if !after.Equal(rec.flags) {
				if acc.ReadOnly {
					return ErrReadOnly
				}
				f.unseen = adjustUnseen(f.unseen, rec.flags, after)
				if err := indexFlags(a.index(folderID), uid, rec.flags, after); err != nil {
					return err
				}
				rec.flags = after
				if err := msgs.Put(u32(uid), rec.encode()); err != nil {
					return err
				}
				shared.Messages = append(shared.Messages, ChangedMessage{UID: uid, Flags: after.List(), OwnSeen: seenOverrides(tx, acc.Account, folderID, uid)})
			}
			out = append(out, ChangedMessage{UID: uid, Flags: effectiveFlags(tx, acc, folderID, uid, rec.flags).List()})
		}
		if len(shared.Messages) > 0 {
			w.publish(shared)
			return a.putFolder(folderID, &f)
		}
		return nil
	})
	return out, err
}

// storeOwnSeen records the viewer's own \Seen when it changes.
func (s *Store) storeOwnSeen(tx *bolt.Tx, w *txState, acc Access, name string, folderID uint64, uid UID, before, after FlagSet) error {
	seen := after.Bits&FlagBitSeen != 0
	if seen == (before.Bits&FlagBitSeen != 0) {
		return nil
	}
	if err := setSeenOverride(tx, acc.Account, folderID, uid, acc.Viewer, seen); err != nil {
		return err
	}
	w.publish(Change{
		Kind: ChangeFlags, Account: acc.Account, FolderID: folderID, Folder: name,
		Messages: []ChangedMessage{{UID: uid, Flags: after.List()}},
		Viewer:   acc.Viewer, Seen: seen, Origin: acc.Origin,
	})
	return nil
}

func adjustUnseen(unseen uint32, before, after FlagSet) uint32 {
	wasSeen, isSeen := before.Bits&FlagBitSeen != 0, after.Bits&FlagBitSeen != 0
	switch {
	case wasSeen && !isSeen:
		return unseen + 1
	case !wasSeen && isSeen && unseen > 0:
		return unseen - 1
	}
	return unseen
}

// Expunge removes the messages marked \Deleted, among uids (ascending) or,
// when uids is nil, in the whole folder. It returns the removed UIDs.
func (s *Store) Expunge(ctx context.Context, acc Access, folderID uint64, uids []UID) ([]UID, error) {
	if acc.ReadOnly {
		return nil, ErrReadOnly
	}
	var removed []UID
	err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		removed = removed[:0]
		a, f, err := openFolderID(tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		var candidates []UID
		var rec messageRecord
		msgs := a.messages(folderID)
		err = msgs.ForEach(func(k, v []byte) error {
			uid := binary.BigEndian.Uint32(k)
			if uids != nil && !containsUID(uids, uid) {
				return nil
			}
			if err := decodeMessage(v, &rec, false); err != nil {
				return err
			}
			if rec.flags.Bits&FlagBitDeleted != 0 {
				candidates = append(candidates, uid)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if removed, err = removeMessages(tx, a, folderID, &f, candidates); err != nil {
			return err
		}
		if len(removed) > 0 {
			w.publish(Change{Kind: ChangeExpunge, Account: acc.Account, FolderID: folderID, Folder: f.name, UIDs: removed, Origin: acc.Origin})
		}
		return nil
	})
	return removed, err
}

func containsUID(sorted []UID, uid UID) bool {
	lo, hi := 0, len(sorted)
	for lo < hi {
		m := (lo + hi) / 2
		if sorted[m] < uid {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(sorted) && sorted[lo] == uid
}

// removeMessages deletes messages from a folder and saves the folder record.
func removeMessages(tx *bolt.Tx, a *account, folderID uint64, f *folderRecord, uids []UID) ([]UID, error) {
	msgs := a.messages(folderID)
	var removed []UID
	var freed int64
	var rec messageRecord
	for _, uid := range uids {
		v := msgs.Get(u32(uid))
		if v == nil {
			continue
		}
		if err := decodeMessage(v, &rec, false); err != nil {
			return nil, fmt.Errorf("message %d: %w", uid, err)
		}
		hash, size, seen := rec.hash, rec.size, rec.flags.Bits&FlagBitSeen != 0
		if err := msgs.Delete(u32(uid)); err != nil {
			return nil, err
		}
		if err := indexRemove(a.index(folderID), uid, rec.flags); err != nil {
			return nil, err
		}
		if err := unrefBlob(tx, hash); err != nil {
			return nil, err
		}
		if err := deleteSeenMessage(tx, a.id, folderID, uid); err != nil {
			return nil, err
		}
		f.messages--
		f.size -= size
		if !seen && f.unseen > 0 {
			f.unseen--
		}
		freed += size
		removed = append(removed, uid)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	if err := a.addUsage(-freed); err != nil {
		return nil, err
	}
	return removed, a.putFolder(folderID, f)
}

// CopyResult maps copied messages to their new UIDs.
type CopyResult struct {
	UIDValidity uint32
	Source      []UID
	Dest        []UID
}

// Copy copies messages (ascending UIDs) from src's folder into dst's folder
// dstName, or moves them when move is set. Bodies are shared, not copied.
// quota is the destination account's quota (0 = none); over it nothing is
// copied and ErrQuota is returned.
func (s *Store) Copy(ctx context.Context, src Access, folderID uint64, uids []UID, dst Access, dstName string, quota int64, move bool) (CopyResult, error) {
	if dst.ReadOnly || (move && src.ReadOnly) {
		return CopyResult{}, ErrReadOnly
	}
	if move && src.Account == dst.Account {
		quota = 0 // a move within one mailbox does not change its usage
	}
	var res CopyResult
	err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		res = CopyResult{}
		sa, sf, err := openFolderID(tx, src.Account, folderID)
		if err != nil {
			return err
		}
		da, did, df, err := openFolder(tx, dst.Account, dstName)
		if err != nil {
			return err
		}
		added := Change{Kind: ChangeNew, Account: dst.Account, FolderID: did, Folder: dstName, Origin: dst.Origin}
		if err := copyInto(tx, src, sa, folderID, uids, da, did, &df, quota, &res, &added); err != nil {
			return err
		}
		if len(res.Source) == 0 {
			return nil
		}
		if da.id == sa.id && did == folderID {
			sf = df // a copy into the folder itself: one record, already updated
		}
		w.publish(added)
		if !move {
			return nil
		}
		if _, err := removeMessages(tx, sa, folderID, &sf, res.Source); err != nil {
			return err
		}
		w.publish(Change{Kind: ChangeExpunge, Account: src.Account, FolderID: folderID, Folder: sf.name, UIDs: res.Source, Origin: src.Origin})
		return nil
	})
	return res, err
}

func copyInto(tx *bolt.Tx, src Access, sa *account, folderID uint64, uids []UID, da *account, did uint64, df *folderRecord, quota int64, res *CopyResult, added *Change) error {
	smsgs, dmsgs := sa.messages(folderID), da.messages(did)
	var total int64
	var rec messageRecord
	for _, uid := range uids {
		v := smsgs.Get(u32(uid))
		if v == nil {
			continue
		}
		if err := decodeMessage(v, &rec, true); err != nil {
			return fmt.Errorf("message %d: %w", uid, err)
		}
		// The copy carries the flags as the viewer sees them.
		rec.flags = effectiveFlags(tx, src, folderID, uid, rec.flags)
		total += rec.size
		if overQuota(da.usage(), total, quota) {
			return ErrQuota
		}
		newUID := df.uidNext
		df.uidNext++
		df.messages++
		df.size += rec.size
		if rec.flags.Bits&FlagBitSeen == 0 {
			df.unseen++
		}
		if err := dmsgs.Put(u32(newUID), rec.encode()); err != nil {
			return err
		}
		if err := indexAdd(da.index(did), newUID, rec.flags); err != nil {
			return err
		}
		if err := addBlobRef(tx, rec.hash); err != nil {
			return err
		}
		res.Source = append(res.Source, uid)
		res.Dest = append(res.Dest, newUID)
		added.Messages = append(added.Messages, ChangedMessage{UID: newUID, Flags: rec.flags.List()})
	}
	res.UIDValidity = df.uidValidity
	if err := da.addUsage(total); err != nil {
		return err
	}
	return da.putFolder(did, df)
}
