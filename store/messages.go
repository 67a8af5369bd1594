package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Access says who acts on which account's folders, and how. The protocol
// layers build one from the directory's rights for every command, so a
// change of rights takes effect at once.
type Access struct {
	Account     string // the mailbox's permanent id
	Viewer      string // the user acting (the account itself for its owner)
	SeenPerUser bool   // \Seen is the viewer's own (shared mailboxes with seen = "per-user")
	ReadOnly    bool   // look only; with SeenPerUser the viewer may still set their own \Seen
	// Origin is handed back in the Changes this access makes, so a session
	// can tell its own changes from others'.
	Origin any
}

// MessageInfo is what Messages reports about one message.
type MessageInfo struct {
	UID          UID
	Flags        []string // as the viewer sees them
	InternalDate time.Time
	Size         int64
	Meta         []byte // Options.Analyze's result for the body
}

// FolderView is a folder's state as a session selecting it needs it.
type FolderView struct {
	Info FolderInfo
	UIDs []UID // every message, ascending
	// TxID is the commit the view reflects: changes with a larger TxID
	// come after it.
	TxID uint64
	// RecentFrom is the first UID that is \Recent for this session (with
	// claimRecent), or that no session has claimed yet (without).
	RecentFrom UID
	// Unseen is the number of messages without \Seen for this viewer and
	// FirstUnseen the UID of the first of them (0 when none).
	Unseen      uint32
	FirstUnseen UID
	// Keywords are the keywords set on the folder's messages, sorted, at
	// most MaxFolderKeywords of them: what IMAP's FLAGS response lists.
	Keywords []string
}

// MaxFolderKeywords bounds FolderView.Keywords, so a folder whose messages
// carry thousands of distinct keywords does not make a FLAGS line to match.
const MaxFolderKeywords = 100

// Select returns a folder's UIDs and state. With claimRecent, messages that
// no session has yet been shown become \Recent for this one (IMAP4rev1).
func (s *Store) Select(ctx context.Context, acc Access, name string, claimRecent bool) (FolderView, error) {
	var view FolderView
	if claimRecent && !acc.ReadOnly {
		err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
			a, id, f, err := openFolder(tx, acc.Account, name)
			if err != nil {
				return err
			}
			view.RecentFrom = f.recentFrom
			if f.recentFrom != f.uidNext {
				f.recentFrom = f.uidNext
				return a.putFolder(id, &f)
			}
			return nil
		})
		if err != nil {
			return view, err
		}
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, id, f, err := openFolder(tx, acc.Account, name)
		if err != nil {
			return err
		}
		view.Info = f.info(id)
		view.TxID = uint64(tx.ID())
		if !claimRecent || acc.ReadOnly {
			// Looking without claiming: what is \Recent stays so.
			view.RecentFrom = f.recentFrom
		}
		view.UIDs = make([]UID, 0, f.messages)
		c := a.messages(id).Cursor()
		var rec messageRecord
		keywords := make(map[string]bool)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			uid := binary.BigEndian.Uint32(k)
			view.UIDs = append(view.UIDs, uid)
			for _, kw := range keywordsOf(v) {
				if len(keywords) < MaxFolderKeywords {
					keywords[kw] = true
				}
			}
			if !acc.SeenPerUser {
				continue
			}
			if err := decodeMessage(v, &rec, false); err != nil {
				return err
			}
			if effectiveFlags(tx, acc, id, uid, rec.flags).bits&flagSeen == 0 {
				view.Unseen++
				if view.FirstUnseen == 0 {
					view.FirstUnseen = uid
				}
			}
		}
		if !acc.SeenPerUser {
			view.Unseen = f.unseen
			if f.unseen > 0 {
				view.FirstUnseen = firstUnseen(c)
			}
		}
		view.Info.Unseen = view.Unseen
		view.Keywords = slices.Sorted(maps.Keys(keywords))
		return nil
	})
	return view, err
}

// ClaimRecent records that the messages below uid were shown as \Recent
// to a session that learnt of them after its Select (IMAP keeps \Recent
// in one session only), so a later Select does not claim them again.
func (s *Store) ClaimRecent(ctx context.Context, acc Access, folderID uint64, below UID) error {
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		a, f, err := openFolderID(tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		below = min(below, f.uidNext)
		if f.recentFrom >= below {
			return nil
		}
		f.recentFrom = below
		return a.putFolder(folderID, &f)
	})
}

// firstUnseen finds the first message without the shared \Seen.
func firstUnseen(c *bolt.Cursor) UID {
	var rec messageRecord
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if decodeMessage(v, &rec, false) == nil && rec.flags.bits&flagSeen == 0 {
			return binary.BigEndian.Uint32(k)
		}
	}
	return 0
}

// Status describes a folder as the viewer sees it (Unseen counts the
// viewer's own \Seen where it is per-user).
func (s *Store) Status(ctx context.Context, acc Access, name string) (FolderInfo, error) {
	var info FolderInfo
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, id, f, err := openFolder(tx, acc.Account, name)
		if err != nil {
			return err
		}
		info = f.info(id)
		c := a.messages(id).Cursor()
		for k, _ := c.Seek(u32(f.recentFrom)); k != nil; k, _ = c.Next() {
			info.Recent++
		}
		if !acc.SeenPerUser {
			return nil
		}
		info.Unseen = 0
		var rec messageRecord
		return a.messages(id).ForEach(func(k, v []byte) error {
			if err := decodeMessage(v, &rec, false); err != nil {
				return err
			}
			if effectiveFlags(tx, acc, id, binary.BigEndian.Uint32(k), rec.flags).bits&flagSeen == 0 {
				info.Unseen++
			}
			return nil
		})
	})
	return info, err
}

// openFolder finds a folder by name.
func openFolder(tx *bolt.Tx, accountID, name string) (*account, uint64, folderRecord, error) {
	a, err := getAccount(tx, accountID, false)
	if err != nil {
		return nil, 0, folderRecord{}, err
	}
	if a == nil {
		return nil, 0, folderRecord{}, ErrNoFolder
	}
	id := a.folderID(name)
	if id == 0 {
		return nil, 0, folderRecord{}, ErrNoFolder
	}
	f, err := a.folder(id)
	return a, id, f, err
}

// openFolderID finds a folder by id.
func openFolderID(tx *bolt.Tx, accountID string, id uint64) (*account, folderRecord, error) {
	a, err := getAccount(tx, accountID, false)
	if err != nil {
		return nil, folderRecord{}, err
	}
	if a == nil {
		return nil, folderRecord{}, ErrNoFolder
	}
	f, err := a.folder(id)
	return a, f, err
}

// messagesChunk bounds how many messages one read transaction copies out:
// a long read transaction would hold up the writer when the file grows.
const messagesChunk = 1024

// Messages calls fn for each of the given messages that exists, in
// ascending UID order. uids must be ascending. fn runs outside any
// transaction; info is reused between calls.
func (s *Store) Messages(ctx context.Context, acc Access, folderID uint64, uids []UID, fn func(info *MessageInfo) error) error {
	for len(uids) > 0 {
		n := min(len(uids), messagesChunk)
		chunk, err := s.readMessages(ctx, acc, folderID, uids[:n])
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

func (s *Store) readMessages(ctx context.Context, acc Access, folderID uint64, uids []UID) ([]MessageInfo, error) {
	out := make([]MessageInfo, 0, len(uids))
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, _, err := openFolderID(tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		c := a.messages(folderID).Cursor()
		var rec messageRecord
		k, v := c.Seek(u32(uids[0]))
		for _, uid := range uids {
			for k != nil && binary.BigEndian.Uint32(k) < uid {
				k, v = c.Next()
			}
			if k == nil {
				break
			}
			if binary.BigEndian.Uint32(k) != uid {
				continue
			}
			if err := decodeMessage(v, &rec, true); err != nil {
				return fmt.Errorf("message %d: %w", uid, err)
			}
			out = append(out, MessageInfo{
				UID:          uid,
				Flags:        effectiveFlags(tx, acc, folderID, uid, rec.flags).list(),
				InternalDate: rec.date,
				Size:         rec.size,
				Meta:         rec.meta,
			})
		}
		return nil
	})
	return out, err
}

// Body returns a message's full text: the header lines added for this
// mailbox, then the stored body.
func (s *Store) Body(ctx context.Context, acc Access, folderID uint64, uid UID) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, _, err := openFolderID(tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		v := a.messages(folderID).Get(u32(uid))
		if v == nil {
			return ErrNotFound
		}
		var rec messageRecord
		if err := decodeMessage(v, &rec, false); err != nil {
			return err
		}
		body := tx.Bucket(bucketBlobs).Get(rec.hash[:])
		if body == nil {
			return fmt.Errorf("message %d body: %w", uid, errCorrupt)
		}
		out = make([]byte, 0, len(rec.prefix)+len(body))
		out = append(append(out, rec.prefix...), body...)
		return nil
	})
	return out, err
}
