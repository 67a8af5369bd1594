package imap

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2/imapserver"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// hub keeps the live state of every folder some session has selected: its
// UIDs in order (the server's view of sequence numbers), its keywords, and
// the sessions on it, each with a go-imap tracker of its own, because what
// a session is told differs per session (\Recent) and per viewer (per-user
// \Seen). It applies the store's change feed, in commit order, to that
// state; it never reads the store there, since the feed runs on the store's
// only writer.
type hub struct {
	store Store
	log   *slog.Logger
	stop  func()

	mu      sync.Mutex
	folders map[folderKey]*liveFolder
}

type folderKey struct {
	account string
	id      uint64
}

// liveFolder is one selected folder. mu guards everything below it and the
// sessions' recent and pending fields: the feed takes it to write, sessions
// to read.
type liveFolder struct {
	key folderKey

	mu       sync.RWMutex
	loaded   bool
	loadedTx uint64
	uids     []store.UID
	deleted  bool
	// keywords are the keywords announced in FLAGS, sorted.
	keywords []string
	// sessions are the sessions on the folder, in the order they came.
	sessions []*selection
	// claimed are the UIDs handed out as \Recent to a session after the
	// store's claim, ascending; no later session may claim them again.
	claimed []store.UID
	refs    int
}

func newHub(st Store, log *slog.Logger) *hub {
	h := &hub{store: st, log: log, folders: make(map[folderKey]*liveFolder)}
	h.stop = st.Subscribe(h.apply)
	return h
}

func (h *hub) close() { h.stop() }

// open makes a folder live for sel, whose store view is view, and sets up
// sel's tracker and \Recent messages. It returns the number of messages
// the session starts with. The caller must call release.
func (h *hub) open(ctx context.Context, sel *selection, view store.FolderView) (uint32, error) {
	key := folderKey{sel.account, sel.folderID}
	h.mu.Lock()
	lf := h.folders[key]
	if lf == nil {
		lf = &liveFolder{key: key}
		h.folders[key] = lf
	}
	lf.refs++
	h.mu.Unlock()

	lf.mu.Lock()
	defer lf.mu.Unlock()
	if !lf.loaded {
		live, err := h.store.Select(ctx, store.Access{Account: sel.account, Viewer: sel.viewer}, sel.folder, false)
		if err == nil && live.Info.ID != sel.folderID {
			err = store.ErrNoFolder // renamed or recreated meanwhile
		}
		if err != nil {
			h.drop(lf)
			return 0, err
		}
		lf.uids, lf.loadedTx, lf.keywords, lf.loaded = live.UIDs, live.TxID, live.Keywords, true
	}
	lf.keywords = mergeKeywords(lf.keywords, view.Keywords)
	sel.lf = lf
	sel.mt = imapserver.NewMailboxTracker(uint32(len(lf.uids)))
	sel.tracker = sel.mt.NewSession()
	for _, uid := range lf.uids {
		if uid < view.RecentFrom || hasUID(lf.claimed, uid) {
			continue
		}
		if uid >= view.Info.UIDNext {
			// Came after the store's claim and nobody took it.
			if !sel.claims {
				continue
			}
			lf.claimed = append(lf.claimed, uid)
			sel.claimedTo = uid + 1
		}
		sel.recent = append(sel.recent, uid)
	}
	slices.Sort(lf.claimed)
	lf.sessions = append(lf.sessions, sel)
	return uint32(len(lf.uids)), nil
}

// release drops a session's hold on its folder.
func (h *hub) release(sel *selection) {
	lf := sel.lf
	lf.mu.Lock()
	lf.sessions = slices.DeleteFunc(lf.sessions, func(s *selection) bool { return s == sel })
	lf.mu.Unlock()
	sel.tracker.Close()
	h.drop(lf)
}

func (h *hub) drop(lf *liveFolder) {
	h.mu.Lock()
	lf.refs--
	if lf.refs == 0 && h.folders[lf.key] == lf {
		delete(h.folders, lf.key)
	}
	h.mu.Unlock()
}

// claimedSince counts the live folder's messages from uid on that a
// session has claimed as \Recent while the store still counts them.
func (h *hub) claimedSince(account string, folderID uint64, from store.UID) uint32 {
	h.mu.Lock()
	lf := h.folders[folderKey{account, folderID}]
	h.mu.Unlock()
	if lf == nil {
		return 0
	}
	lf.mu.RLock()
	defer lf.mu.RUnlock()
	var n uint32
	for _, uid := range lf.claimed {
		if _, ok := slices.BinarySearch(lf.uids, uid); ok && uid >= from {
			n++
		}
	}
	return n
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
		lf.announceKeywords(c.Messages) // APPEND or COPY may bring keywords
		lf.addMessages(c.Messages)
	case store.ChangeExpunge:
		lf.expunge(c.UIDs)
	case store.ChangeFlags:
		lf.flags(c)
	case store.ChangeFolders:
		if c.Folder == "" {
			lf.deleted = true
		}
	}
	for _, sel := range lf.sessions {
		sel.wakeUp()
	}
}

// addMessages appends new messages and makes them \Recent in the first
// session that takes \Recent (RFC 3501 2.3.2: in exactly one session).
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
	added := lf.uids[before:]
	for _, sel := range lf.sessions {
		if sel.claims {
			sel.recent = append(sel.recent, added...)
			sel.claimedTo = added[len(added)-1] + 1
			lf.claimed = append(lf.claimed, added...)
			break
		}
	}
	for _, sel := range lf.sessions {
		sel.mt.QueueNumMessages(uint32(len(lf.uids)))
		sel.newMessages = true
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
		for _, sel := range lf.sessions {
			if sel.tracker.EncodeSeqNum(uint32(idx+1)) != 0 {
				sel.expunged = append(sel.expunged, uids[i])
			}
			sel.mt.QueueExpunge(uint32(idx + 1))
		}
		lf.uids = slices.Delete(lf.uids, idx, idx+1)
		if j, ok := slices.BinarySearch(lf.claimed, uids[i]); ok {
			lf.claimed = slices.Delete(lf.claimed, j, j+1)
		}
	}
	for _, sel := range lf.sessions {
		slices.Sort(sel.expunged)
	}
}

// flags tells sessions about changed flags: a keyword new to the folder
// first as FLAGS, then each message's flags as the session sees them (its
// viewer's \Seen, its \Recent). The session that made the change is told
// only when it asked to be (STORE answers it otherwise).
func (lf *liveFolder) flags(c store.Change) {
	// A viewer's own \Seen change carries the message's keywords too.
	lf.announceKeywords(c.Messages)
	origin, _ := c.Origin.(*selection)
	for _, sel := range lf.sessions {
		if sel == origin && !sel.echo {
			continue
		}
		if c.Viewer != "" && (sel.viewer != c.Viewer || !sel.seenPerUser) {
			continue // someone else's own \Seen
		}
		for _, m := range c.Messages {
			idx, ok := slices.BinarySearch(lf.uids, m.UID)
			if !ok {
				continue
			}
			flags := m.Flags
			if c.Viewer == "" && sel.seenPerUser {
				seen, own := m.OwnSeen[sel.viewer]
				if !own {
					seen = slices.Contains(flags, store.FlagSeen)
				}
				flags = withSeen(flags, seen)
			}
			sel.mt.QueueMessageFlags(uint32(idx+1), goimap.UID(m.UID), sel.withRecent(m.UID, toIMAPFlags(flags)), nil)
		}
	}
}

// announceKeywords queues FLAGS for every session when msgs carry a keyword
// the folder's FLAGS did not list yet, so no client sees a keyword in a
// FETCH before FLAGS named it.
func (lf *liveFolder) announceKeywords(msgs []store.ChangedMessage) {
	var fresh []string
	for _, m := range msgs {
		for _, f := range m.Flags {
			if !strings.HasPrefix(f, `\`) && !containsKeyword(lf.keywords, f) && !slices.Contains(fresh, f) {
				fresh = append(fresh, f)
			}
		}
	}
	if len(fresh) == 0 || len(lf.keywords) >= store.MaxFolderKeywords {
		return
	}
	lf.keywords = mergeKeywords(lf.keywords, fresh)
	flags := mailboxFlags(lf.keywords)
	for _, sel := range lf.sessions {
		sel.mt.QueueMailboxFlags(flags)
	}
}

// hasKeywords reports whether FLAGS already lists every keyword of flags.
func (lf *liveFolder) hasKeywords(flags []goimap.Flag) bool {
	lf.mu.RLock()
	defer lf.mu.RUnlock()
	for _, f := range flags {
		if !strings.HasPrefix(string(f), `\`) && !containsKeyword(lf.keywords, string(f)) {
			return false
		}
	}
	return true
}

func containsKeyword(sorted []string, kw string) bool {
	_, ok := slices.BinarySearch(sorted, kw)
	return ok
}

func mergeKeywords(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// mailboxFlags is what FLAGS lists: the system flags and the keywords.
func mailboxFlags(keywords []string) []goimap.Flag {
	return slices.Concat(systemFlags, toIMAPFlags(keywords))
}

func hasUID(sorted []store.UID, uid store.UID) bool {
	_, ok := slices.BinarySearch(sorted, uid)
	return ok
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
