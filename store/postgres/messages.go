package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// Select returns a folder's UIDs and state. With claimRecent, messages that
// no session has yet been shown become \Recent for this one (IMAP4rev1).
// The view's TxID is the folder's change sequence number when it was read.
func (s *Store) Select(ctx context.Context, acc store.Access, name string, claimRecent bool) (store.FolderView, error) {
	var view store.FolderView
	claimed := claimRecent && !acc.ReadOnly
	if claimed {
		err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
			var from int64
			err := tx.QueryRow(ctx, `UPDATE folders f SET recent_from = f.uid_next
				FROM (SELECT id, recent_from FROM folders WHERE account = $1 AND name = $2 FOR UPDATE) old
				WHERE f.account = $1 AND f.id = old.id RETURNING old.recent_from`, acc.Account, name).Scan(&from)
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNoFolder
			}
			view.RecentFrom = UID(from)
			return err
		})
		if err != nil {
			return view, err
		}
	}
	err := s.read(ctx, func(tx pgx.Tx) error {
		f, err := folderByName(ctx, tx, acc.Account, name)
		if err != nil {
			return err
		}
		view.Info = f.info()
		if !claimed {
			// Looking without claiming: what is \Recent stays so.
			view.RecentFrom = UID(f.recentFrom)
		}
		err = tx.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM folder_seq WHERE account = $1 AND folder = $2), 0)`,
			acc.Account, f.id).Scan(&view.TxID)
		if err != nil {
			return err
		}
		return readView(ctx, tx, acc, &f, &view)
	})
	return view, err
}

// ClaimRecent records that the messages below uid were shown as \Recent
// to a session that learnt of them after its Select (IMAP keeps \Recent
// in one session only), so a later Select does not claim them again.
func (s *Store) ClaimRecent(ctx context.Context, acc store.Access, folderID uint64, below UID) error {
	if acc.Account == "" {
		return fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		// Only forward, and never past UIDNEXT: the row's lock orders
		// this with a Select's claim and with deliveries.
		var found bool
		err := tx.QueryRow(ctx, `WITH u AS (
				UPDATE folders SET recent_from = least($3, uid_next)
				WHERE account = $1 AND id = $2 AND recent_from < least($3, uid_next) RETURNING 1
			) SELECT EXISTS (SELECT 1 FROM u) OR EXISTS (SELECT 1 FROM folders WHERE account = $1 AND id = $2)`,
			acc.Account, folderID, int64(below)).Scan(&found)
		if err == nil && !found {
			err = store.ErrNoFolder
		}
		return err
	})
}

// readView fills in the UIDs, the viewer's unseen messages and the
// keywords of a folder.
func readView(ctx context.Context, tx pgx.Tx, acc store.Access, f *folder, view *store.FolderView) error {
	overrides, err := seenOverrides(ctx, tx, acc, f.id, nil)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT uid, flags, keywords FROM messages WHERE account = $1 AND folder = $2 ORDER BY uid`,
		acc.Account, f.id)
	if err != nil {
		return err
	}
	view.UIDs = make([]UID, 0, f.messages)
	keywords := make(map[string]bool)
	var uid int64
	var fs store.FlagSet
	_, err = pgx.ForEachRow(rows, []any{&uid, &fs.Bits, &fs.Keywords}, func() error {
		view.UIDs = append(view.UIDs, UID(uid))
		for _, kw := range fs.Keywords {
			if len(keywords) < store.MaxFolderKeywords {
				keywords[kw] = true
			}
		}
		if !effective(acc, overrides, UID(uid), fs).Seen() {
			view.Unseen++
			if view.FirstUnseen == 0 {
				view.FirstUnseen = UID(uid)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	view.Info.Unseen = view.Unseen
	view.Keywords = slices.Sorted(maps.Keys(keywords))
	return nil
}

// seenOverrides reads acc's own \Seen of a folder's messages (of uids, or
// all when uids is nil) where \Seen is per-user; nil otherwise.
func seenOverrides(ctx context.Context, tx pgx.Tx, acc store.Access, folderID uint64, uids []int64) (map[UID]bool, error) {
	if !acc.SeenPerUser {
		return nil, nil
	}
	q := `SELECT uid, seen FROM seen WHERE account = $1 AND folder = $2 AND viewer = $3`
	args := []any{acc.Account, folderID, acc.Viewer}
	if uids != nil {
		q += ` AND uid = ANY($4)`
		args = append(args, uids)
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out := make(map[UID]bool)
	var uid int64
	var seen bool
	_, err = pgx.ForEachRow(rows, []any{&uid, &seen}, func() error {
		out[UID(uid)] = seen
		return nil
	})
	return out, err
}

// effective applies acc's view of \Seen to a message's shared flags: a
// viewer without an override sees the shared flag, so switching a mailbox
// between modes loses nothing.
func effective(acc store.Access, overrides map[UID]bool, uid UID, shared store.FlagSet) store.FlagSet {
	if !acc.SeenPerUser {
		return shared
	}
	if seen, ok := overrides[uid]; ok {
		return shared.WithSeen(seen)
	}
	return shared
}

// Status describes a folder as the viewer sees it (Unseen counts the
// viewer's own \Seen where it is per-user).
func (s *Store) Status(ctx context.Context, acc store.Access, name string) (store.FolderInfo, error) {
	var info store.FolderInfo
	err := s.read(ctx, func(tx pgx.Tx) error {
		f, err := folderByName(ctx, tx, acc.Account, name)
		if err != nil {
			return err
		}
		info = f.info()
		err = tx.QueryRow(ctx, `SELECT count(*) FROM messages WHERE account = $1 AND folder = $2 AND uid >= $3`,
			acc.Account, f.id, f.recentFrom).Scan(&info.Recent)
		if err != nil || !acc.SeenPerUser {
			return err
		}
		// The viewer's override where there is one, else the shared flag.
		return tx.QueryRow(ctx, `SELECT count(*) FROM messages m
			LEFT JOIN seen s ON s.account = m.account AND s.folder = m.folder AND s.uid = m.uid AND s.viewer = $3
			WHERE m.account = $1 AND m.folder = $2 AND NOT coalesce(s.seen, m.flags & 1 <> 0)`,
			acc.Account, f.id, acc.Viewer).Scan(&info.Unseen)
	})
	return info, err
}

// messagesChunk bounds how many messages one query reads.
const messagesChunk = 1024

// Messages calls fn for each of the given messages that exists, in
// ascending UID order. uids must be ascending. fn runs outside any
// transaction; info is reused between calls.
func (s *Store) Messages(ctx context.Context, acc store.Access, folderID uint64, uids []UID, fn func(info *store.MessageInfo) error) error {
	return s.eachMessage(ctx, acc, folderID, uids, false, fn)
}

// MessagesInPlace is Messages with info.SearchData, read with the
// messages' rows from their bodies' (the rows are copied out of the
// database anyway, so there is nothing to save by looking at them in
// place, as bbolt can). fn must not call the store.
func (s *Store) MessagesInPlace(ctx context.Context, acc store.Access, folderID uint64, uids []UID, fn func(info *store.MessageInfo) error) error {
	return s.eachMessage(ctx, acc, folderID, uids, true, fn)
}

// eachMessage calls fn for the messages, a chunk per query.
func (s *Store) eachMessage(ctx context.Context, acc store.Access, folderID uint64, uids []UID, withSearch bool, fn func(info *store.MessageInfo) error) error {
	for len(uids) > 0 {
		n := min(len(uids), messagesChunk)
		chunk, err := s.readMessages(ctx, acc, folderID, uids[:n], withSearch)
		if err != nil {
			return err
		}
		for i := range chunk {
			if err := fn(&chunk[i]); err != nil {
				return err
			}
		}
		uids = uids[n:]
	}
	return nil
}

func uidArgs(uids []UID) []int64 {
	out := make([]int64, len(uids))
	for i, u := range uids {
		out[i] = int64(u)
	}
	return out
}

// readMessages reads the given messages' rows; withSearch, each with its
// body's search data.
func (s *Store) readMessages(ctx context.Context, acc store.Access, folderID uint64, uids []UID, withSearch bool) ([]store.MessageInfo, error) {
	out := make([]store.MessageInfo, 0, len(uids))
	err := s.read(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		if _, err := folderByID(ctx, tx, acc.Account, folderID); err != nil {
			return err
		}
		want := uidArgs(uids)
		overrides, err := seenOverrides(ctx, tx, acc, folderID, want)
		if err != nil {
			return err
		}
		query := `SELECT uid, flags, keywords, date_ns, size, meta, prefix, NULL::bytea FROM messages
			WHERE account = $1 AND folder = $2 AND uid = ANY($3) ORDER BY uid`
		if withSearch {
			query = `SELECT m.uid, m.flags, m.keywords, m.date_ns, m.size, m.meta, m.prefix, b.search
				FROM messages m LEFT JOIN blobs b ON b.hash = m.hash
				WHERE m.account = $1 AND m.folder = $2 AND m.uid = ANY($3) ORDER BY m.uid`
		}
		rows, err := tx.Query(ctx, query, acc.Account, folderID, want)
		if err != nil {
			return err
		}
		var uid, dateNS int64
		var fs store.FlagSet
		var m store.MessageInfo
		_, err = pgx.ForEachRow(rows, []any{&uid, &fs.Bits, &fs.Keywords, &dateNS, &m.Size, &m.Meta, &m.Prefix, &m.SearchData}, func() error {
			m.UID = UID(uid)
			m.Flags = effective(acc, overrides, m.UID, fs).List()
			m.InternalDate = time.Unix(0, dateNS)
			m.Meta = append([]byte(nil), m.Meta...)
			m.Prefix = append([]byte(nil), m.Prefix...)
			if m.SearchData != nil {
				m.SearchData = append([]byte(nil), m.SearchData...)
			}
			out = append(out, m)
			return nil
		})
		return err
	})
	return out, err
}

// Body returns a message's full text: the header lines added for this
// mailbox, then the stored body; store.ErrNotFound for a message not in the
// folder. It is Bodies for one message.
func (s *Store) Body(ctx context.Context, acc store.Access, folderID uint64, uid UID) ([]byte, error) {
	var text []byte
	found := false
	err := s.Bodies(ctx, acc, folderID, []UID{uid}, func(_ UID, body []byte) error {
		text, found = body, true
		return nil
	})
	if err == nil && !found {
		err = store.ErrNotFound
	}
	return text, err
}
