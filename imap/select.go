package imap

import (
	"errors"
	"slices"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postkasse.dev/postkasse/store"
)

// selection is the session's selected folder.
type selection struct {
	lf       *liveFolder
	mt       *imapserver.MailboxTracker // this session's alone
	tracker  *imapserver.SessionTracker
	account  string
	viewer   string
	mailbox  Mailbox
	folderID uint64
	folder   string // the store's name
	name     string // the IMAP name
	examine  bool   // EXAMINE: nothing may change
	// rev1: the session speaks IMAP4rev1 and sees \Recent; claims: it
	// also takes \Recent of messages that arrive while it is selected.
	rev1, claims bool
	seenPerUser  bool
	// wake tells Idle that the tracker has news.
	wake chan struct{}

	// Guarded by lf.mu:
	recent      []store.UID // \Recent in this session, ascending
	claimedTo   store.UID   // \Recent claimed after Select reaches below this
	recordedTo  store.UID   // claimedTo as the store last recorded it
	newMessages bool        // EXISTS queued: RECENT follows it
	expunged    []store.UID // expunged, and the client not yet told
	echo        bool        // the feed tells this session of its own flag change

	// searchRes is the saved result of SEARCH RETURN (SAVE), for "$".
	searchRes goimap.UIDSet
}

// msgRef is a message as one command addresses it: the client's sequence
// number and the UID.
type msgRef struct {
	seq uint32
	uid store.UID
}

var systemFlags = []goimap.Flag{goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagDraft}

// Select implements SELECT and EXAMINE.
func (s *session) Select(name string, options *goimap.SelectOptions) (*goimap.SelectData, error) {
	s.unselect()
	loc, err := s.locate(name)
	if err != nil {
		return nil, err
	}
	if loc.node {
		return nil, errNoSelect
	}
	acc := s.access(loc.mailbox)
	rev1 := !s.conn.EnabledCaps().Has(goimap.CapIMAP4rev2)
	claims := rev1 && !options.ReadOnly && !acc.ReadOnly
	view, err := s.srv.opts.Store.Select(s.ctx, acc, loc.folder, claims)
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	sel := &selection{
		account: acc.Account, viewer: acc.Viewer, mailbox: loc.mailbox,
		folderID: view.Info.ID, folder: loc.folder, name: name,
		examine: options.ReadOnly, rev1: rev1, claims: claims,
		seenPerUser: acc.SeenPerUser, wake: make(chan struct{}, 1),
	}
	n, err := s.srv.hub.open(s.ctx, sel, view)
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	s.mu.Lock()
	s.selected = sel
	s.mu.Unlock()
	data := selectData(sel, view, n)
	s.recordClaims(sel)
	return data, nil
}

// recordClaims has the store record the \Recent this session claimed
// after its Select, so a later Select does not claim those messages again.
// It runs once the claim is being reported to the client.
func (s *session) recordClaims(sel *selection) {
	sel.lf.mu.Lock()
	to := sel.claimedTo
	record := to > sel.recordedTo
	sel.recordedTo = max(to, sel.recordedTo)
	sel.lf.mu.Unlock()
	if !record {
		return
	}
	acc := store.Access{Account: sel.account, Viewer: sel.viewer}
	if err := s.srv.opts.Store.ClaimRecent(s.ctx, acc, sel.folderID, to); err != nil && !errors.Is(err, store.ErrNoFolder) {
		s.srv.log.Warn("imap: record \\Recent", "err", err)
	}
}

// selectData is SELECT's answer. A "read" grantee's folder is read-only
// unless they keep their own \Seen, which they may set.
func selectData(sel *selection, view store.FolderView, n uint32) *goimap.SelectData {
	lf := sel.lf
	lf.mu.RLock()
	defer lf.mu.RUnlock()
	mb := sel.mailbox
	flags := mailboxFlags(lf.keywords)
	data := &goimap.SelectData{
		Flags:       flags,
		NumMessages: n,
		NumRecent:   uint32(len(sel.recent)),
		UIDNext:     goimap.UID(view.Info.UIDNext),
		UIDValidity: view.Info.UIDValidity,
		ReadOnly:    mb.ReadOnly && !mb.SeenPerUser,
	}
	switch {
	case sel.examine:
	case !mb.ReadOnly:
		data.PermanentFlags = append(slices.Clone(flags), goimap.FlagWildcard)
	case mb.SeenPerUser:
		data.PermanentFlags = []goimap.Flag{goimap.FlagSeen}
	}
	if last := len(lf.uids); last > 0 && lf.uids[last-1] >= view.Info.UIDNext {
		data.UIDNext = goimap.UID(lf.uids[last-1] + 1)
	}
	if view.FirstUnseen != 0 {
		data.FirstUnseenSeqNum = sel.tracker.EncodeSeqNum(lf.seqOf(view.FirstUnseen))
	}
	return data
}

// recentLocked reports whether a message is \Recent in this session. The
// caller holds sel.lf.mu.
func (sel *selection) recentLocked(uid store.UID) bool {
	return sel.rev1 && hasUID(sel.recent, uid)
}

// withRecent adds \Recent to flags where the message is recent here. The
// caller holds sel.lf.mu.
func (sel *selection) withRecent(uid store.UID, flags []goimap.Flag) []goimap.Flag {
	if sel.recentLocked(uid) {
		return append(flags, goimap.Flag(`\Recent`))
	}
	return flags
}

// recentFlags is withRecent for callers that do not hold the lock.
func (sel *selection) recentFlags(uid store.UID, flags []goimap.Flag) []goimap.Flag {
	sel.lf.mu.RLock()
	defer sel.lf.mu.RUnlock()
	return sel.withRecent(uid, flags)
}

// wakeUp tells an idling session to poll.
func (sel *selection) wakeUp() {
	select {
	case sel.wake <- struct{}{}:
	default:
	}
}

// selection returns the selected folder. Idle and its Poll run on a
// goroutine of their own, and go-imap may close the session (Close
// unselects) before that goroutine ends: when the line that should end
// IDLE fails to read, handleIdle returns without waiting for it.
func (s *session) selection() *selection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.selected
}

// Unselect implements UNSELECT (and the end of CLOSE).
func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	s.mu.Lock()
	sel := s.selected
	s.selected = nil
	s.mu.Unlock()
	if sel == nil {
		return
	}
	s.srv.hub.release(sel)
}

// current returns the selected folder after checking the user still has
// access to it, with the access as it stands now.
func (s *session) current() (*selection, store.Access, error) {
	sel := s.selected
	if sel == nil {
		return nil, store.Access{}, errNotSelected
	}
	mb, ok := s.recheck(sel.mailbox)
	if !ok {
		s.unselect()
		return nil, store.Access{}, errAccessGone
	}
	sel.lf.mu.RLock()
	deleted := sel.lf.deleted
	sel.lf.mu.RUnlock()
	if deleted {
		return nil, store.Access{}, errNonExistent
	}
	acc := s.access(mb)
	acc.Origin = sel
	if sel.examine {
		acc.ReadOnly = true
	}
	return sel, acc, nil
}

// Poll sends pending changes of the selected folder, and after new
// messages the number of \Recent ones (IMAP4rev1 clients count on it).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.selection()
	if sel == nil {
		return nil
	}
	if err := sel.tracker.Poll(w, allowExpunge); err != nil {
		return err
	}
	sel.lf.mu.Lock()
	report := sel.newMessages
	sel.newMessages = false
	if allowExpunge {
		sel.expunged = nil
	}
	var n uint32
	if report {
		n = sel.visibleRecent()
	}
	sel.lf.mu.Unlock()
	if !report {
		return nil
	}
	s.recordClaims(sel)
	return w.WriteNumRecent(n)
}

// visibleRecent counts the \Recent messages the client knows of. The
// caller holds sel.lf.mu.
func (sel *selection) visibleRecent() uint32 {
	var n uint32
	for _, uid := range sel.recent {
		if seq := sel.lf.seqOf(uid); seq != 0 && sel.tracker.EncodeSeqNum(seq) != 0 {
			n++
		}
	}
	return n
}

// Idle sends changes of the selected folder as they happen.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	sel := s.selection()
	if sel == nil {
		<-stop
		return nil
	}
	for {
		select {
		case <-sel.wake:
			if err := s.Poll(w, true); err != nil {
				return err
			}
		case <-stop:
			return nil
		}
	}
}

// resolve turns a command's sequence or UID set into the messages it names,
// ascending, as this session sees the folder. Messages the client has not
// yet been told about are left out.
func (sel *selection) resolve(numSet goimap.NumSet) []msgRef {
	if goimap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	sel.lf.mu.RLock()
	defer sel.lf.mu.RUnlock()
	uids := sel.lf.uids
	switch set := numSet.(type) {
	case goimap.UIDSet:
		var maxUID store.UID
		if len(uids) > 0 {
			maxUID = uids[len(uids)-1]
		}
		var out []msgRef
		for _, r := range set {
			start, stop := staticRange(uint32(r.Start), uint32(r.Stop), maxUID)
			lo, _ := slices.BinarySearch(uids, start)
			for i := lo; i < len(uids) && uids[i] <= stop; i++ {
				if seq := sel.tracker.EncodeSeqNum(uint32(i + 1)); seq != 0 {
					out = append(out, msgRef{seq: seq, uid: uids[i]})
				}
			}
		}
		return dedupe(out)
	case goimap.SeqSet:
		refs := make([]msgRef, 0, len(uids))
		for i, uid := range uids {
			if seq := sel.tracker.EncodeSeqNum(uint32(i + 1)); seq != 0 {
				refs = append(refs, msgRef{seq: seq, uid: uid})
			}
		}
		var maxSeq uint32
		if len(refs) > 0 {
			maxSeq = refs[len(refs)-1].seq
		}
		out := refs[:0:0]
		for _, ref := range refs {
			if containsSeq(set, ref.seq, maxSeq) {
				out = append(out, ref)
			}
		}
		return out
	}
	return nil
}

// goneIn reports whether numSet names a message the client still knows
// but that another session has expunged.
func (sel *selection) goneIn(numSet goimap.NumSet) bool {
	if goimap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	sel.lf.mu.RLock()
	defer sel.lf.mu.RUnlock()
	if len(sel.expunged) == 0 {
		return false
	}
	// The client's view: the messages it was told of, the expunged ones
	// still among them, in UID order.
	var view []store.UID
	for i, uid := range sel.lf.uids {
		if sel.tracker.EncodeSeqNum(uint32(i+1)) != 0 {
			view = append(view, uid)
		}
	}
	view = append(view, sel.expunged...)
	slices.Sort(view)
	for seq, uid := range view {
		if !hasUID(sel.expunged, uid) {
			continue
		}
		switch set := numSet.(type) {
		case goimap.UIDSet:
			for _, r := range set {
				if start, stop := staticRange(uint32(r.Start), uint32(r.Stop), view[len(view)-1]); uid >= start && uid <= stop {
					return true
				}
			}
		case goimap.SeqSet:
			if containsSeq(set, uint32(seq+1), uint32(len(view))) {
				return true
			}
		}
	}
	return false
}

// staticRange resolves "*" (0) to max and orders the bounds.
func staticRange(start, stop, max uint32) (uint32, uint32) {
	if start == 0 {
		start = max
	}
	if stop == 0 {
		stop = max
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

func containsSeq(set goimap.SeqSet, seq, maxSeq uint32) bool {
	for _, r := range set {
		start, stop := staticRange(r.Start, r.Stop, maxSeq)
		if seq >= start && seq <= stop {
			return true
		}
	}
	return false
}

// dedupe sorts refs by UID and drops repeats (overlapping ranges).
func dedupe(refs []msgRef) []msgRef {
	slices.SortFunc(refs, func(a, b msgRef) int { return int(int64(a.uid) - int64(b.uid)) })
	return slices.CompactFunc(refs, func(a, b msgRef) bool { return a.uid == b.uid })
}

func uidsOf(refs []msgRef) []store.UID {
	out := make([]store.UID, len(refs))
	for i, r := range refs {
		out[i] = r.uid
	}
	return out
}

func toIMAPFlags(flags []string) []goimap.Flag {
	out := make([]goimap.Flag, len(flags))
	for i, f := range flags {
		out[i] = goimap.Flag(f)
	}
	return out
}

func fromIMAPFlags(flags []goimap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if f == goimap.Flag(`\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}
