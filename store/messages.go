package store

import (
	"context"
	"encoding/binary"
	"fmt"
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
	// Prefix is the header lines kept for this mailbox alone before the
	// shared body (Target.Prefix): Analyze never saw them.
	Prefix []byte
	// SearchData is Options.SearchData's result for the body, kept once
	// per body; MessagesInPlace sets it (nil when the body has none), the
	// other readers leave it nil.
	SearchData []byte
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
	view, err := s.selectView(ctx, acc, name)
	if err != nil || !claimRecent || acc.ReadOnly || view.RecentFrom == view.Info.UIDNext {
		// Nothing to claim: no write, whose commit would cost a sync.
		return view, err
	}
	var from UID
	err = s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		a, id, f, err := openFolder(tx, acc.Account, name)
		if err != nil {
			return err
		}
		from = f.recentFrom
		if f.recentFrom != f.uidNext {
			f.recentFrom = f.uidNext
			return a.putFolder(id, &f)
		}
		return nil
	})
	if err != nil {
		return view, err
	}
	view, err = s.selectView(ctx, acc, name)
	view.RecentFrom = from
	return view, err
}

// selectView reads a folder's state in one read transaction, with
// RecentFrom as the folder record has it.
func (s *Store) selectView(ctx context.Context, acc Access, name string) (FolderView, error) {
	var view FolderView
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, id, f, err := openFolder(tx, acc.Account, name)
		if err != nil {
			return err
		}
		view.Info = f.info(id)
		view.TxID = uint64(tx.ID())
		view.RecentFrom = f.recentFrom
		st, err := readSelectState(tx, a, id, &f, acc)
		if err != nil {
			return err
		}
		view.UIDs, view.Unseen, view.FirstUnseen, view.Keywords = st.uids, st.unseen, st.firstUnseen, st.keywords
		view.Info.Unseen = view.Unseen
		return nil
	})
	return view, err
}

// selectState is what SELECT and STATUS answer, read from the folder's
// index (index.go) and not from its messages.
type selectState struct {
	uids        []UID
	unseen      uint32
	firstUnseen UID
	keywords    []string
}

func readSelectState(tx *bolt.Tx, a *account, id uint64, f *folderRecord, acc Access) (selectState, error) {
	ix := a.index(id)
	if ix == nil || !f.indexed {
		return selectState{}, fmt.Errorf("folder %q has no index: %w", f.name, errCorrupt)
	}
	var st selectState
	var err error
	if st.keywords, err = indexKeywords(ix); err != nil {
		return st, err
	}
	st.uids = indexUIDList(ix, f.messages)
	if acc.SeenPerUser {
		st.unseen, st.firstUnseen = viewerUnseen(tx, ix, acc, id, f.unseen)
		return st, nil
	}
	st.unseen = f.unseen
	forEachBit(ix, indexUnseen, func(uid UID) bool { st.firstUnseen = uid; return false })
	return st, nil
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
		st, err := readSelectState(tx, a, id, &f, acc)
		if err != nil {
			return err
		}
		from, _ := slices.BinarySearch(st.uids, f.recentFrom)
		info.Recent = uint32(len(st.uids) - from)
		info.Unseen = st.unseen
		return nil
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

// MessagesInPlace is Messages for a caller that only looks at each
// message, as SEARCH does: fn runs inside the store's read and info, Meta
// and SearchData included, is valid only during the call, so nothing is
// copied; fn must not call the store.
func (s *Store) MessagesInPlace(ctx context.Context, acc Access, folderID uint64, uids []UID, fn func(info *MessageInfo) error) error {
	for len(uids) > 0 {
		n := min(len(uids), messagesChunk)
		if err := s.scanMessages(ctx, acc, folderID, uids[:n], false, fn); err != nil {
			return err
		}
		uids = uids[n:]
	}
	return nil
}

func (s *Store) readMessages(ctx context.Context, acc Access, folderID uint64, uids []UID) ([]MessageInfo, error) {
	out := make([]MessageInfo, 0, len(uids))
	err := s.scanMessages(ctx, acc, folderID, uids, true, func(info *MessageInfo) error {
		out = append(out, *info)
		return nil
	})
	return out, err
}

// scanMessages calls fn, inside one read, with each of the given messages
// that exists; with copyBytes, info.Meta outlives the read. Without it
// (in place), info.SearchData is looked up too.
func (s *Store) scanMessages(ctx context.Context, acc Access, folderID uint64, uids []UID, copyBytes bool, fn func(info *MessageInfo) error) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		a, _, err := openFolderID(tx, acc.Account, folderID)
		if err != nil {
			return err
		}
		c := a.messages(folderID).Cursor()
		var search *searchReader
		refs := tx.Bucket(bucketBlobRefs)
		if !copyBytes {
			search = newSearchReader(tx)
		}
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
			if err := decodeMessage(v, &rec, copyBytes); err != nil {
				return fmt.Errorf("message %d: %w", uid, err)
			}
			info := MessageInfo{
				UID:          uid,
				Flags:        effectiveFlags(tx, acc, folderID, uid, rec.flags).List(),
				InternalDate: rec.date,
				Size:         rec.size,
				Meta:         rec.meta,
				Prefix:       rec.prefix,
			}
			if search != nil {
				id := rec.searchID
				if id == 0 {
					// A record from before search data, whose body may have
					// it by now (RefreshMeta gives the record the id).
					id = getBlobRef(refs, rec.hash).searchID
				}
				if id != 0 {
					info.SearchData = search.get(id)
				}
			}
			if err := fn(&info); err != nil {
				return err
			}
		}
		return nil
	})
}

// Body returns a message's full text: the header lines added for this
// mailbox, then the stored body; ErrNotFound for a message not in the
// folder. It is Bodies for one message.
func (s *Store) Body(ctx context.Context, acc Access, folderID uint64, uid UID) ([]byte, error) {
	var text []byte
	found := false
	err := s.Bodies(ctx, acc, folderID, []UID{uid}, func(_ UID, body []byte) error {
		text, found = body, true
		return nil
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	return text, err
}
