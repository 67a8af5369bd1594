package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// storedFlags reads the shared flags of the given messages that exist.
func storedFlags(ctx context.Context, tx pgx.Tx, accountID string, folderID uint64, uids []int64) (map[UID]store.FlagSet, error) {
	rows, err := tx.Query(ctx, `SELECT uid, flags, keywords FROM messages WHERE account = $1 AND folder = $2 AND uid = ANY($3)`,
		accountID, folderID, uids)
	if err != nil {
		return nil, err
	}
	out := make(map[UID]store.FlagSet, len(uids))
	var uid int64
	var fs store.FlagSet
	_, err = pgx.ForEachRow(rows, []any{&uid, &fs.Bits, &fs.Keywords}, func() error {
		out[UID(uid)] = store.FlagSet{Bits: fs.Bits, Keywords: fs.Keywords}
		fs.Keywords = nil
		return nil
	})
	return out, err
}

// StoreFlags changes the flags of the given messages (ascending UIDs) and
// returns every message that exists with its flags as the viewer now sees
// them. With per-user \Seen, \Seen changes only the viewer's own view.
func (s *Store) StoreFlags(ctx context.Context, acc store.Access, folderID uint64, uids []UID, op store.FlagOp, flags []string) ([]store.ChangedMessage, error) {
	change := store.ParseFlags(flags)
	touchesShared := change.Bits&^store.FlagBitSeen != 0 || len(change.Keywords) > 0 || op == store.FlagsSet
	if acc.ReadOnly && (!acc.SeenPerUser || touchesShared && !store.SeenOnly(op, change)) {
		return nil, store.ErrReadOnly
	}
	var out []store.ChangedMessage
	err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
		out = out[:0]
		if _, err := lockAccounts(ctx, tx, false, acc.Account); err != nil {
			return err
		}
		f, err := folderByID(ctx, tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		want := uidArgs(uids)
		current, err := storedFlags(ctx, tx, acc.Account, folderID, want)
		if err != nil {
			return err
		}
		overrides, err := seenOverrides(ctx, tx, acc, folderID, want)
		if err != nil {
			return err
		}
		// A change of shared flags carries every viewer's own \Seen; with
		// per-user \Seen, an operation on \Seen alone changes none.
		var own map[UID]map[string]bool
		if !acc.SeenPerUser || touchesShared {
			if own, err = allSeenOverrides(ctx, tx, acc.Account, folderID, want); err != nil {
				return err
			}
		}
		shared := store.Change{Kind: store.ChangeFlags, Account: acc.Account, FolderID: folderID, Folder: f.name, Origin: acc.Origin}
		batch := &pgx.Batch{}
		for _, uid := range uids {
			rec, ok := current[uid]
			if !ok {
				continue
			}
			before := effective(acc, overrides, uid, rec)
			after := store.ApplyFlags(before, op, change)
			if acc.SeenPerUser {
				if seen := after.Seen(); seen != before.Seen() {
					overrides[uid] = seen
					if own != nil {
						if own[uid] == nil {
							own[uid] = make(map[string]bool)
						}
						own[uid][acc.Viewer] = seen
					}
					batch.Queue(`INSERT INTO seen (account, folder, uid, viewer, seen) VALUES ($1, $2, $3, $4, $5)
						ON CONFLICT (account, folder, uid, viewer) DO UPDATE SET seen = excluded.seen`,
						acc.Account, folderID, int64(uid), acc.Viewer, seen)
					w.publish(store.Change{
						Kind: store.ChangeFlags, Account: acc.Account, FolderID: folderID, Folder: f.name,
						Messages: []store.ChangedMessage{{UID: uid, Flags: after.List()}},
						Viewer:   acc.Viewer, Seen: seen, Origin: acc.Origin,
					})
				}
				// The shared record keeps its own \Seen.
				after = after.WithSeen(rec.Seen())
			}
			if !after.Equal(rec) {
				if acc.ReadOnly {
					return store.ErrReadOnly
				}
				f.unseen = adjustUnseen(f.unseen, rec, after)
				rec = after
				batch.Queue(`UPDATE messages SET flags = $4, keywords = $5 WHERE account = $1 AND folder = $2 AND uid = $3`,
					acc.Account, folderID, int64(uid), after.Bits, keywordList(after))
				shared.Messages = append(shared.Messages, store.ChangedMessage{UID: uid, Flags: after.List(), OwnSeen: own[uid]})
			}
			out = append(out, store.ChangedMessage{UID: uid, Flags: effective(acc, overrides, uid, rec).List()})
		}
		if len(shared.Messages) > 0 {
			w.publish(shared)
			batch.Queue(`UPDATE folders SET unseen = $3 WHERE account = $1 AND id = $2`, acc.Account, folderID, f.unseen)
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	return out, err
}

// allSeenOverrides reads every viewer's own \Seen of the given messages:
// by UID, a map from viewer to \Seen; a map, empty when there are none.
func allSeenOverrides(ctx context.Context, tx pgx.Tx, accountID string, folderID uint64, uids []int64) (map[UID]map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT uid, viewer, seen FROM seen WHERE account = $1 AND folder = $2 AND uid = ANY($3)`,
		accountID, folderID, uids)
	if err != nil {
		return nil, err
	}
	out := make(map[UID]map[string]bool)
	var uid int64
	var viewer string
	var seen bool
	_, err = pgx.ForEachRow(rows, []any{&uid, &viewer, &seen}, func() error {
		if out[UID(uid)] == nil {
			out[UID(uid)] = make(map[string]bool)
		}
		out[UID(uid)][viewer] = seen
		return nil
	})
	return out, err
}

func adjustUnseen(unseen int64, before, after store.FlagSet) int64 {
	switch {
	case before.Seen() && !after.Seen():
		return unseen + 1
	case !before.Seen() && after.Seen() && unseen > 0:
		return unseen - 1
	}
	return unseen
}

// Expunge removes the messages marked \Deleted, among uids (ascending) or,
// when uids is nil, in the whole folder. It returns the removed UIDs.
func (s *Store) Expunge(ctx context.Context, acc store.Access, folderID uint64, uids []UID) ([]UID, error) {
	if acc.ReadOnly {
		return nil, store.ErrReadOnly
	}
	var removed []UID
	err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
		removed = nil
		accounts, err := lockAccounts(ctx, tx, false, acc.Account)
		if err != nil {
			return err
		}
		if accounts[acc.Account] == nil {
			return store.ErrNoFolder
		}
		f, err := folderByID(ctx, tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		q := `SELECT uid FROM messages WHERE account = $1 AND folder = $2 AND flags & $3 <> 0`
		args := []any{acc.Account, folderID, store.FlagBitDeleted}
		if uids != nil {
			q += ` AND uid = ANY($4)`
			args = append(args, uidArgs(uids))
		}
		rows, err := tx.Query(ctx, q+` ORDER BY uid`, args...)
		if err != nil {
			return err
		}
		candidates, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if removed, err = removeMessages(ctx, tx, accounts[acc.Account], &f, candidates); err != nil {
			return err
		}
		if len(removed) > 0 {
			w.publish(store.Change{Kind: store.ChangeExpunge, Account: acc.Account, FolderID: folderID, Folder: f.name, UIDs: removed, Origin: acc.Origin})
		}
		return saveAccounts(ctx, tx, accounts)
	})
	return removed, err
}

// removeMessages deletes messages from a folder, with their per-user \Seen
// and their references to bodies, and saves the folder's counters.
func removeMessages(ctx context.Context, tx pgx.Tx, a *account, f *folder, uids []int64) ([]UID, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `DELETE FROM messages WHERE account = $1 AND folder = $2 AND uid = ANY($3)
		RETURNING uid, size, flags, hash`, a.id, f.id, uids)
	if err != nil {
		return nil, err
	}
	var removed []UID
	refs := make(map[string]int64)
	var uid, size int64
	var bits int32
	var hash []byte
	_, err = pgx.ForEachRow(rows, []any{&uid, &size, &bits, &hash}, func() error {
		removed = append(removed, UID(uid))
		refs[string(hash)]++
		f.messages--
		f.size -= size
		if uint16(bits)&store.FlagBitSeen == 0 && f.unseen > 0 {
			f.unseen--
		}
		a.addUsage(-size)
		return nil
	})
	if err != nil || len(removed) == 0 {
		return nil, err
	}
	sortUIDs(removed)
	if _, err := tx.Exec(ctx, `DELETE FROM seen WHERE account = $1 AND folder = $2 AND uid = ANY($3)`, a.id, f.id, uids); err != nil {
		return nil, err
	}
	if err := unrefBlobs(ctx, tx, sortedCounts(refs)); err != nil {
		return nil, err
	}
	return removed, saveFolder(ctx, tx, a.id, f)
}

// Copy copies messages (ascending UIDs) from src's folder into dst's folder
// dstName, or moves them when move is set. Bodies are shared, not copied.
// quota is the destination account's quota (0 = none); over it nothing is
// copied and ErrQuota is returned.
func (s *Store) Copy(ctx context.Context, src store.Access, folderID uint64, uids []UID, dst store.Access, dstName string, quota int64, move bool) (store.CopyResult, error) {
	if dst.ReadOnly || (move && src.ReadOnly) {
		return store.CopyResult{}, store.ErrReadOnly
	}
	if move && src.Account == dst.Account {
		quota = 0 // a move within one mailbox does not change its usage
	}
	var res store.CopyResult
	err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
		res = store.CopyResult{}
		accounts, err := lockAccounts(ctx, tx, false, src.Account, dst.Account)
		if err != nil {
			return err
		}
		sa, da := accounts[src.Account], accounts[dst.Account]
		if sa == nil || da == nil {
			return store.ErrNoFolder
		}
		sf, err := folderByID(ctx, tx, src.Account, folderID)
		if err != nil {
			return err
		}
		df, err := folderByName(ctx, tx, dst.Account, dstName)
		if err != nil {
			return err
		}
		added := store.Change{Kind: store.ChangeNew, Account: dst.Account, FolderID: df.id, Folder: dstName, Origin: dst.Origin}
		if err := copyInto(ctx, tx, src, folderID, uids, da, &df, quota, &res, &added); err != nil {
			return err
		}
		if src.Account == dst.Account && df.id == folderID {
			sf = df // a copy into the folder itself: one folder, already counted
		}
		if len(res.Source) > 0 {
			w.publish(added)
			if move {
				if _, err := removeMessages(ctx, tx, sa, &sf, uidArgs(res.Source)); err != nil {
					return err
				}
				w.publish(store.Change{Kind: store.ChangeExpunge, Account: src.Account, FolderID: folderID, Folder: sf.name, UIDs: res.Source, Origin: src.Origin})
			}
		}
		return saveAccounts(ctx, tx, accounts)
	})
	return res, err
}
