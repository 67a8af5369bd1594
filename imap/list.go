package imap

import (
	"maps"
	"slices"
	"sort"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postkasse.dev/postkasse/store"
)

// listEntry is one name LIST may show.
type listEntry struct {
	name       string
	mailbox    Mailbox
	folder     string // "" for \Noselect namespace nodes
	specialUse string
	subscribed bool
	gone       bool // subscribed, but the folder no longer exists
}

// List implements LIST and LSUB over the personal namespace and the shared
// mailboxes the user reaches now. go-imap turns LSUB into LIST (SUBSCRIBED
// RECURSIVEMATCH) and a CHILDINFO answer into LSUB's \Noselect parent.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *goimap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": go-imap drops the empty pattern; the client asks
		// for the hierarchy delimiter and the root of the reference's
		// namespace.
		root := ""
		if s.homeOwn && strings.HasPrefix(ref, sharedPrefix+string(delim)) {
			root = sharedPrefix + string(delim)
		}
		return w.WriteList(&goimap.ListData{Attrs: []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}, Delim: delim, Mailbox: root})
	}
	entries, err := s.listEntries(options.SelectSubscribed)
	if err != nil {
		return err
	}
	children, subscribedBelow := hierarchy(entries)
	for _, e := range entries {
		if !matchesAny(e.name, ref, patterns) {
			continue
		}
		var childInfo *goimap.ListDataChildInfo
		if options.SelectRecursiveMatch && subscribedBelowUnmatched(subscribedBelow[e.name], ref, patterns) {
			childInfo = &goimap.ListDataChildInfo{Subscribed: true}
		}
		if options.SelectSubscribed && !e.subscribed && childInfo == nil {
			continue
		}
		if options.SelectSpecialUse && e.specialUse == "" {
			continue
		}
		if err := w.WriteList(s.listData(e, children[e.name], childInfo, options)); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) listData(e listEntry, hasChildren bool, childInfo *goimap.ListDataChildInfo, options *goimap.ListOptions) *goimap.ListData {
	data := &goimap.ListData{Delim: delim, Mailbox: e.name, ChildInfo: childInfo}
	switch {
	case e.gone:
		data.Attrs = append(data.Attrs, goimap.MailboxAttrNonExistent)
	case e.folder == "":
		data.Attrs = append(data.Attrs, goimap.MailboxAttrNoSelect)
	}
	if hasChildren {
		data.Attrs = append(data.Attrs, goimap.MailboxAttrHasChildren)
	} else if !e.gone {
		data.Attrs = append(data.Attrs, goimap.MailboxAttrHasNoChildren)
	}
	if e.specialUse != "" {
		data.Attrs = append(data.Attrs, goimap.MailboxAttr(e.specialUse))
	}
	if e.subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
		data.Attrs = append(data.Attrs, goimap.MailboxAttrSubscribed)
	}
	if options.ReturnStatus != nil && e.folder != "" && !e.gone {
		if st, err := s.status(e.mailbox, e.folder, e.name, options.ReturnStatus); err == nil {
			data.Status = st
		}
	}
	return data
}

// hierarchy finds, for every parent name, whether it has children that
// exist, and which of its descendants are subscribed.
func hierarchy(entries []listEntry) (children map[string]bool, subscribedBelow map[string][]string) {
	children = make(map[string]bool)
	subscribedBelow = make(map[string][]string)
	for _, e := range entries {
		for p := parentOf(e.name); p != ""; p = parentOf(p) {
			if !e.gone {
				children[p] = true
			}
			if e.subscribed {
				subscribedBelow[p] = append(subscribedBelow[p], e.name)
			}
		}
	}
	return children, subscribedBelow
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, delim); i > 0 {
		return name[:i]
	}
	return ""
}

// subscribedBelowUnmatched reports whether a subscribed descendant is not
// itself returned by the patterns: RFC 5258 3.5 then reports it through
// its parent's CHILDINFO.
func subscribedBelowUnmatched(descendants []string, ref string, patterns []string) bool {
	for _, d := range descendants {
		if !matchesAny(d, ref, patterns) {
			return true
		}
	}
	return false
}

func matchesAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
		// INBOX matches case-insensitively.
		if strings.HasPrefix(name, "INBOX") && imapserver.MatchList(name, delim, normalizeINBOX(ref), normalizeINBOX(p)) {
			return true
		}
	}
	return false
}

// listEntries gathers every name the session may see, in order; with
// gone, also the subscribed names that no longer exist.
func (s *session) listEntries(gone bool) ([]listEntry, error) {
	home, ok := s.recheck(s.home)
	if !ok {
		return nil, errAccessGone
	}
	entries, err := s.folderEntries(home, false, gone)
	if err != nil {
		return nil, err
	}
	if !s.homeOwn {
		return entries, nil
	}
	shared := s.srv.opts.Directory.Shared(s.user.ID)
	if len(shared) == 0 {
		return entries, nil
	}
	entries = append(entries, listEntry{name: sharedPrefix, subscribed: true})
	for _, mb := range shared {
		if mb.ID == s.user.ID {
			continue
		}
		if err := s.ensureFolders(mb); err != nil {
			return nil, err
		}
		entries = append(entries, listEntry{name: sharedPrefix + string(delim) + mb.Address, mailbox: mb, subscribed: true})
		more, err := s.folderEntries(mb, true, gone)
		if err != nil {
			return nil, err
		}
		entries = append(entries, more...)
	}
	return entries, nil
}

// folderEntries lists a mailbox's folders with the user's subscriptions.
// A shared mailbox's folders are subscribed unless the user unsubscribed.
// With gone, subscriptions whose folder no longer exists come last.
func (s *session) folderEntries(mb Mailbox, sharedDefault, gone bool) ([]listEntry, error) {
	folders, err := s.srv.opts.Store.Folders(s.ctx, mb.ID)
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	subs, err := s.srv.opts.Store.Subscriptions(s.ctx, s.user.ID, mb.ID)
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	sort.SliceStable(folders, func(i, j int) bool {
		return folderOrder(folders[i].Name) < folderOrder(folders[j].Name)
	})
	entries := make([]listEntry, 0, len(folders))
	for _, f := range folders {
		subscribed, decided := subs[f.Name]
		if !decided {
			subscribed = sharedDefault || f.SpecialUse != "" || f.Name == "INBOX"
		}
		entries = append(entries, listEntry{
			name: s.displayName(mb, f.Name), mailbox: mb, folder: f.Name,
			specialUse: f.SpecialUse, subscribed: subscribed,
		})
		delete(subs, f.Name)
	}
	if gone {
		for _, name := range slices.Sorted(maps.Keys(subs)) {
			if subs[name] {
				entries = append(entries, listEntry{name: s.displayName(mb, name), mailbox: mb, subscribed: true, gone: true})
			}
		}
	}
	return entries, nil
}

// folderOrder puts INBOX first, the rest by name.
func folderOrder(name string) string {
	if name == "INBOX" || strings.HasPrefix(name, "INBOX/") {
		return "\x00" + name
	}
	return name
}

// Status implements STATUS.
func (s *session) Status(name string, options *goimap.StatusOptions) (*goimap.StatusData, error) {
	loc, err := s.locate(name)
	if err != nil {
		return nil, err
	}
	if loc.node {
		return nil, errNoSelect
	}
	return s.status(loc.mailbox, loc.folder, name, options)
}

func (s *session) status(mb Mailbox, folder, name string, options *goimap.StatusOptions) (*goimap.StatusData, error) {
	info, err := s.srv.opts.Store.Status(s.ctx, s.access(mb), folder)
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	data := &goimap.StatusData{Mailbox: name}
	if options.NumMessages {
		data.NumMessages = &info.Messages
	}
	if options.UIDNext {
		data.UIDNext = goimap.UID(info.UIDNext)
	}
	if options.UIDValidity {
		data.UIDValidity = info.UIDValidity
	}
	if options.NumUnseen {
		data.NumUnseen = &info.Unseen
	}
	if options.Size {
		data.Size = &info.Size
	}
	if options.NumRecent {
		// The store counts what no Select claimed; sessions selected now
		// may have claimed some since.
		n := info.Recent - min(info.Recent, s.srv.hub.claimedSince(mb.ID, info.ID, info.RecentFrom))
		data.NumRecent = &n
	}
	if options.AppendLimit {
		limit := s.srv.opts.AppendLimit
		data.AppendLimit = &limit
	}
	if options.NumDeleted {
		n, err := s.countDeleted(mb, folder)
		if err != nil {
			return nil, err
		}
		data.NumDeleted = &n
	}
	return data, nil
}

func (s *session) countDeleted(mb Mailbox, folder string) (uint32, error) {
	acc := s.access(mb)
	view, err := s.srv.opts.Store.Select(s.ctx, acc, folder, false)
	if err != nil {
		return 0, mapError(s.srv.log, err)
	}
	var n uint32
	err = s.srv.opts.Store.Messages(s.ctx, acc, view.Info.ID, view.UIDs, func(m *store.MessageInfo) error {
		if slices.Contains(m.Flags, store.FlagDeleted) {
			n++
		}
		return nil
	})
	return n, mapError(s.srv.log, err)
}

// Subscribe implements SUBSCRIBE.
func (s *session) Subscribe(name string) error { return s.setSubscribed(name, true) }

// Unsubscribe implements UNSUBSCRIBE.
func (s *session) Unsubscribe(name string) error { return s.setSubscribed(name, false) }

func (s *session) setSubscribed(name string, on bool) error {
	loc, err := s.locate(name)
	if err != nil {
		return err
	}
	if loc.node {
		return errNoSelect
	}
	if on {
		if _, err := s.srv.opts.Store.Folder(s.ctx, loc.mailbox.ID, loc.folder); err != nil {
			return mapError(s.srv.log, err)
		}
	}
	return mapError(s.srv.log, s.srv.opts.Store.SetSubscribed(s.ctx, s.user.ID, loc.mailbox.ID, loc.folder, on))
}
