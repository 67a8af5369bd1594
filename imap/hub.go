package imap

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"

	"github.com/emersion/go-imap/v2/imapserver"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// hub keeps the live state of every folder some session has selected: its
// UIDs in order (the server's view of sequence numbers) and go-imap
// trackers, one per viewer, so per-user \Seen can differ between viewers.
// It applies the store's change feed, in commit order, to that state.
type hub struct {
	store *store.Store
	log   *slog.Logger
	stop  func()

	mu      sync.Mutex
	folders map[folderKey]*liveFolder
}

type folderKey struct {
	account string
	id      uint64
}

// liveFolder is one selected folder. mu guards uids and the trackers'
// consistency with them: the feed takes it to write, sessions to read.
type liveFolder struct {
	key folderKey

	mu       sync.RWMutex
	loaded   bool
	loadedTx uint64
	uids     []store.UID
	deleted  bool
	viewers  map[string]*viewerTracker
	refs     int
}

// viewerTracker is the go-imap tracker shared by one viewer's sessions on a
// folder.
type viewerTracker struct {
	mt          *imapserver.MailboxTracker
	seenPerUser bool
	sessions    int
}

func newHub(st *store.Store, log *slog.Logger) *hub {
	h := &hub{store: st, log: log, folders: make(map[folderKey]*liveFolder)}
	h.stop = st.Subscribe(h.apply)
	return h
}

func (h *hub) close() { h.stop() }

// open makes a folder live for a session of viewer and returns the folder,
// the session's tracker, and the number of messages the session starts
// with. The caller must call release.
func (h *hub) open(ctx context.Context, acc store.Access, name string, folderID uint64) (*liveFolder, *imapserver.SessionTracker, uint32, error) {
	key := folderKey{acc.Account, folderID}
	h.mu.Lock()
	lf := h.folders[key]
	if lf == nil {
		lf = &liveFolder{key: key, viewers: make(map[string]*viewerTracker)}
		h.folders[key] = lf
	}
	lf.refs++
	h.mu.Unlock()

	lf.mu.Lock()
	defer lf.mu.Unlock()
	if !lf.loaded {
		view, err := h.store.Select(ctx, store.Access{Account: acc.Account, Viewer: acc.Viewer}, name, false)
		if err == nil && view.Info.ID != folderID {
			err = store.ErrNoFolder // renamed or recreated meanwhile
		}
		if err != nil {
			h.release(lf, "")
			return nil, nil, 0, err
		}
		lf.uids, lf.loadedTx, lf.loaded = view.UIDs, view.TxID, true
	}
	vt := lf.viewers[acc.Viewer]
	if vt == nil {
		vt = &viewerTracker{mt: imapserver.NewMailboxTracker(uint32(len(lf.uids))), seenPerUser: acc.SeenPerUser}
		lf.viewers[acc.Viewer] = vt
	}
	vt.sessions++
	return lf, vt.mt.NewSession(), uint32(len(lf.uids)), nil
}

// release drops a session's hold on a folder.
func (h *hub) release(lf *liveFolder, viewer string) {
	if viewer != "" {
		lf.mu.Lock()
		if vt := lf.viewers[viewer]; vt != nil {
			vt.sessions--
			if vt.sessions == 0 {
				delete(lf.viewers, viewer)
			}
		}
		lf.mu.Unlock()
	}
	h.mu.Lock()
	lf.refs--
	if lf.refs == 0 && h.folders[lf.key] == lf {
		delete(h.folders, lf.key)
	}
	h.mu.Unlock()
}

// apply is the store's change feed. It runs on the store's writer, after
// the commit, so it only updates memory.
func (h *hub) apply(c store.Change) {
	h.mu.Lock()
	lf := h.folders[folderKey{c.Account, c.FolderID}]
	h.mu.Unlock()
	if lf == nil {
		return
	}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if !lf.loaded || c.TxID <= lf.loadedTx {
		return // the folder was read after this change
	}
	switch c.Kind {
	case store.ChangeNew:
		lf.addMessages(c.Messages)
	case store.ChangeExpunge:
		lf.expunge(c.UIDs)
	case store.ChangeFlags:
		h.flags(lf, c)
	case store.ChangeFolders:
		if c.Folder == "" {
			lf.deleted = true
		}
	}
}

func (lf *liveFolder) addMessages(msgs []store.ChangedMessage) {
	before := len(lf.uids)
	for _, m := range msgs {
		if n := len(lf.uids); n > 0 && lf.uids[n-1] >= m.UID {
			continue // UIDs only grow; an old one was already applied
		}
		lf.uids = append(lf.uids, m.UID)
	}
	if len(lf.uids) == before {
		return
	}
	for _, vt := range lf.viewers {
		vt.mt.QueueNumMessages(uint32(len(lf.uids)))
	}
}

// expunge removes UIDs, the highest first, telling every session (the one
// that expunged too: go-imap writes the responses when it polls).
func (lf *liveFolder) expunge(uids []store.UID) {
	for i := len(uids) - 1; i >= 0; i-- {
		idx, ok := slices.BinarySearch(lf.uids, uids[i])
		if !ok {
			continue
		}
		lf.uids = slices.Delete(lf.uids, idx, idx+1)
		for _, vt := range lf.viewers {
			vt.mt.QueueExpunge(uint32(idx + 1))
		}
	}
}

// flags tells sessions about changed flags, each viewer its own view of
// \Seen, and not the session that made the change (STORE answers it).
func (h *hub) flags(lf *liveFolder, c store.Change) {
	origin, _ := c.Origin.(*selection)
	for viewer, vt := range lf.viewers {
		if c.Viewer != "" && (viewer != c.Viewer || !vt.seenPerUser) {
			continue // someone else's own \Seen
		}
		var own map[store.UID]bool
		if c.Viewer == "" && vt.seenPerUser {
			own = h.ownSeen(lf, viewer, c.Messages)
		}
		for _, m := range c.Messages {
			idx, ok := slices.BinarySearch(lf.uids, m.UID)
			if !ok {
				continue
			}
			flags := m.Flags
			if seen, ok := own[m.UID]; ok {
				flags = withSeen(flags, seen)
			}
			var source *imapserver.SessionTracker
			if origin != nil && origin.lf == lf && origin.viewer == viewer {
				source = origin.tracker
			}
			vt.mt.QueueMessageFlags(uint32(idx+1), goimap.UID(m.UID), toIMAPFlags(flags), source)
		}
	}
}

// ownSeen looks up a per-user viewer's \Seen for messages whose shared
// flags changed.
func (h *hub) ownSeen(lf *liveFolder, viewer string, msgs []store.ChangedMessage) map[store.UID]bool {
	uids := make([]store.UID, 0, len(msgs))
	for _, m := range msgs {
		uids = append(uids, m.UID)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	out := make(map[store.UID]bool, len(uids))
	acc := store.Access{Account: lf.key.account, Viewer: viewer, SeenPerUser: true}
	err := h.store.Messages(context.Background(), acc, lf.key.id, uids, func(m *store.MessageInfo) error {
		out[m.UID] = slices.Contains(m.Flags, store.FlagSeen)
		return nil
	})
	if err != nil {
		h.log.Warn("imap: per-user flags lookup", "err", err)
	}
	return out
}

func withSeen(flags []string, seen bool) []string {
	out := make([]string, 0, len(flags)+1)
	for _, f := range flags {
		if f != store.FlagSeen {
			out = append(out, f)
		}
	}
	if seen {
		out = append(out, store.FlagSeen)
	}
	return out
}

// seqOf returns the server sequence number of a UID, or 0.
func (lf *liveFolder) seqOf(uid store.UID) uint32 {
	idx, ok := slices.BinarySearch(lf.uids, uid)
	if !ok {
		return 0
	}
	return uint32(idx + 1)
}
