package store

// ChangeKind says what a Change is about.
type ChangeKind uint8

// The kinds of change the store publishes.
const (
	// ChangeNew: messages were added to a folder (Messages).
	ChangeNew ChangeKind = iota + 1
	// ChangeFlags: flags of messages changed (Messages, with their new
	// shared flags). With Viewer set, only that viewer's own \Seen changed.
	ChangeFlags
	// ChangeExpunge: messages were removed from a folder (UIDs).
	ChangeExpunge
	// ChangeFolders: folders of the account were created, deleted or
	// renamed; FolderID names the folder, Folder its new name ("" deleted).
	ChangeFolders
)

// Change is one committed change, published to subscribers in commit order.
type Change struct {
	TxID     uint64 // the commit that made it; increases with every commit
	Kind     ChangeKind
	Account  string
	FolderID uint64
	Folder   string
	Messages []ChangedMessage // ChangeNew, ChangeFlags
	UIDs     []UID            // ChangeExpunge
	// Viewer is set on per-user \Seen changes: only that viewer's view of
	// \Seen changed; Seen says to what.
	Viewer string
	Seen   bool
	// Origin is the Access.Origin of the write that made the change.
	Origin any
}

// ChangedMessage is a message as a change reports it.
type ChangedMessage struct {
	UID   UID
	Flags []string // the shared flags after the change
	// OwnSeen holds, on a change of shared flags, the viewers' own \Seen
	// for the message where they have one (per-user \Seen), so a
	// subscriber can show each viewer their flags without reading the
	// store. A viewer not in it sees the shared \Seen.
	OwnSeen map[string]bool
}

// Subscribe registers fn to be called, in commit order, with every change
// after it is committed. fn runs on the store's writer: it must be quick and
// must not write to the store. The returned function unsubscribes.
func (s *Store) Subscribe(fn func(Change)) (cancel func()) {
	s.subMu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	s.subMu.Unlock()
	return func() {
		s.subMu.Lock()
		delete(s.subs, id)
		s.subMu.Unlock()
	}
}
