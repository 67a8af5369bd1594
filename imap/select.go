package imap

import (
	"slices"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postkasse.dev/postkasse/store"
)

// selection is the session's selected folder.
type selection struct {
	lf       *liveFolder
	tracker  *imapserver.SessionTracker
	viewer   string
	mailbox  Mailbox
	folderID uint64
	folder   string // the store's name
	name     string // the IMAP name
	examine  bool   // EXAMINE: nothing may change
	// recentFrom is the first UID that is \Recent in this session.
	recentFrom store.UID
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
	rev2 := s.conn.EnabledCaps().Has(goimap.CapIMAP4rev2)
	view, err := s.srv.opts.Store.Select(s.ctx, acc, loc.folder, !options.ReadOnly && !rev2)
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	lf, tracker, n, err := s.srv.hub.open(s.ctx, acc, loc.folder, view.Info.ID)
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	sel := &selection{
		lf: lf, tracker: tracker, viewer: acc.Viewer, mailbox: loc.mailbox,
		folderID: view.Info.ID, folder: loc.folder, name: name,
		examine: options.ReadOnly, recentFrom: view.RecentFrom,
	}
	s.mu.Lock()
	s.selected = sel
	s.mu.Unlock()

	flags := slices.Concat(systemFlags, toIMAPFlags(view.Keywords))
	data := &goimap.SelectData{
		Flags:       flags,
		NumMessages: n,
		UIDNext:     goimap.UID(view.Info.UIDNext),
		UIDValidity: view.Info.UIDValidity,
	}
	if !options.ReadOnly && !loc.mailbox.ReadOnly {
		data.PermanentFlags = append(slices.Clone(flags), goimap.FlagWildcard)
	} else if loc.mailbox.ReadOnly && loc.mailbox.SeenPerUser && !options.ReadOnly {
		data.PermanentFlags = []goimap.Flag{goimap.FlagSeen}
	}
	lf.mu.RLock()
	if last := len(lf.uids); last > 0 && lf.uids[last-1] >= view.Info.UIDNext {
		data.UIDNext = goimap.UID(lf.uids[last-1] + 1)
	}
	if view.FirstUnseen != 0 {
		data.FirstUnseenSeqNum = tracker.EncodeSeqNum(lf.seqOf(view.FirstUnseen))
	}
	for _, uid := range lf.uids {
		if uid >= view.RecentFrom {
			data.NumRecent++
		}
	}
	lf.mu.RUnlock()
	return data, nil
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
	if sel != nil {
		sel.tracker.Close()
		s.srv.hub.release(sel.lf, sel.viewer)
	}
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
		acc.SeenPerUser = false
	}
	return sel, acc, nil
}

// Poll sends pending changes of the selected folder.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.selected == nil {
		return nil
	}
	return s.selected.tracker.Poll(w, allowExpunge)
}

// Idle sends changes of the selected folder as they happen.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.selected == nil {
		<-stop
		return nil
	}
	return s.selected.tracker.Idle(w, stop)
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
