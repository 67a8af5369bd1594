package imap

import (
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
}

// List implements LIST and LSUB over the personal namespace and the shared
// mailboxes the user reaches now.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *goimap.ListOptions) error {
	if len(patterns) == 1 && patterns[0] == "" && !options.SelectSubscribed {
		// LIST "" "": the hierarchy delimiter and root.
		return w.WriteList(&goimap.ListData{Attrs: []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}, Delim: delim, Mailbox: ""})
	}
	entries, err := s.listEntries()
	if err != nil {
		return err
	}
	children := make(map[string]bool)
	for _, e := range entries {
		if i := strings.LastIndexByte(e.name, delim); i > 0 {
			for p := e.name[:i]; ; {
				children[p] = true
				j := strings.LastIndexByte(p, delim)
				if j <= 0 {
					break
				}
				p = p[:j]
			}
		}
	}
	for _, e := range entries {
		if !matchesAny(e.name, ref, patterns) {
			continue
		}
		if options.SelectSubscribed && !e.subscribed {
			continue
		}
		if options.SelectSpecialUse && e.specialUse == "" {
			continue
		}
		data := &goimap.ListData{Delim: delim, Mailbox: e.name}
		if e.folder == "" {
			data.Attrs = append(data.Attrs, goimap.MailboxAttrNoSelect)
		}
		if children[e.name] {
			data.Attrs = append(data.Attrs, goimap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, goimap.MailboxAttrHasNoChildren)
		}
		if e.specialUse != "" {
			data.Attrs = append(data.Attrs, goimap.MailboxAttr(e.specialUse))
		}
		if e.subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, goimap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil && e.folder != "" {
			if st, err := s.status(e.mailbox, e.folder, e.name, options.ReturnStatus); err == nil {
				data.Status = st
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
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

// listEntries gathers every name the session may see, in order.
func (s *session) listEntries() ([]listEntry, error) {
	home, ok := s.recheck(s.home)
	if !ok {
		return nil, errAccessGone
	}
	entries, err := s.folderEntries(home, false)
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
		more, err := s.folderEntries(mb, true)
		if err != nil {
			return nil, err
		}
		entries = append(entries, more...)
	}
	return entries, nil
}

// folderEntries lists a mailbox's folders with the user's subscriptions.
// A shared mailbox's folders are subscribed unless the user unsubscribed.
func (s *session) folderEntries(mb Mailbox, sharedDefault bool) ([]listEntry, error) {
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
		var zero uint32
		data.NumRecent = &zero
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
