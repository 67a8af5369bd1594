package store

import "time"

// A Record is one piece of a whole store in a form no backend owns, as
// `postkasse copy-store` carries it from one backend to the other: the
// source's Export hands records to a function, one at a time, and the
// destination's loader stores them. Both backends read and write the same
// records, so a copy keeps every UID, UIDVALIDITY, flag, per-user \Seen,
// queued message and memory whichever way it goes.
//
// Records come in this order, which loaders rely on: the MetaRecord; every
// BodyRecord; then, account by account, its AccountRecord, its
// FolderRecords, each folder's MessageRecords by UID and the account's
// SeenRecords; then the records that do not belong to one account's
// folders (subscriptions, the queue, memories, address books, the cache).
//
// Counters that follow from the records (a folder's message, unseen and
// byte counts, an account's usage, a body's reference count) are not
// carried: the loader counts what it stored, so a copy is consistent even
// where its source was not. The byte slices of a record belong to the
// exporter and are valid only until the function it was handed to returns.
type Record interface{ record() }

// MetaRecord is store-wide state: the last UIDVALIDITY handed out, so the
// copy never hands out one again.
type MetaRecord struct {
	LastUIDValidity uint32
}

// BodyRecord is one message body, stored once whatever the number of
// messages that use it, under its SHA-256, with its search data
// (Options.SearchData's result, kept once per body): nil when the body has
// none yet, as in a store from before search data that RefreshMeta has
// not reached. A message names its body by hash alone; the backend's own
// link to the search data (bbolt's id) is made again by the loader.
type BodyRecord struct {
	Hash   [32]byte
	Body   []byte
	Search []byte
}

// AccountRecord is an account: its id, whether its 90% quota warning was
// sent, and the id its next folder will get (folder ids are never reused).
type AccountRecord struct {
	ID         string
	Warned     bool
	NextFolder uint64
}

// FolderRecord is a folder of the account before it, with its id (per-user
// \Seen refers to it), UIDVALIDITY, UIDNEXT and the first UID no session
// has yet been shown as \Recent.
type FolderRecord struct {
	Account     string
	ID          uint64
	Name        string
	SpecialUse  string
	UIDValidity uint32
	UIDNext     UID
	RecentFrom  UID
}

// MessageRecord is a message of a folder: its UID, shared flags (system
// flags by their names, then keywords), internal date, size (prefix and
// body), body hash, the header lines added for this mailbox alone, and the
// IMAP layer's cached analysis of the body.
type MessageRecord struct {
	Account string
	Folder  uint64
	UID     UID
	Flags   []string
	Date    time.Time
	Size    int64
	Hash    [32]byte
	Prefix  []byte
	Meta    []byte
}

// SeenRecord is one viewer's own \Seen of a message in a folder read with
// seen = "per-user".
type SeenRecord struct {
	Account string
	Folder  uint64
	UID     UID
	Viewer  string
	Seen    bool
}

// SubscriptionRecord is a viewer's decision about a folder of an account.
type SubscriptionRecord struct {
	Viewer     string
	Account    string
	Folder     string
	Subscribed bool
}

// QueueRecord is a message on the outbound queue, with its id, attempts,
// next attempt and recipients' states. A PostgreSQL node's claim is not
// carried: the copy is made with every node stopped.
type QueueRecord struct {
	Message QueuedMessage
	Body    []byte
}

// AutoReplyRecord is an automatic-reply memory: when a mailbox last
// answered a sender with a text (Key is NoteAutoReply's).
type AutoReplyRecord struct {
	Key  []byte
	Last time.Time
}

// RemoteRecord is a connected account's progress under the caller's key.
type RemoteRecord struct {
	Key   []byte
	State RemoteState
}

// RemoteFiledRecord is the digest of a message DeliverRemote filed under
// a connected account's key.
type RemoteFiledRecord struct {
	Key    []byte
	Digest []byte
}

// ImportedRecord is the digest of a message Import filed into an account.
type ImportedRecord struct {
	Account string
	Digest  []byte
}

// CardBookRecord is an address book's change counter.
type CardBookRecord struct {
	Book    Book
	Counter uint64
}

// CardRecord is a card of an address book, or the tombstone of a deleted
// one (Card.Deleted, no data). Card.ETag is derived and not carried.
type CardRecord struct {
	Book Book
	Card Card
}

// CacheRecord is an entry of the cache (ACME account key, certificates).
type CacheRecord struct {
	Key  string
	Data []byte
}

func (*MetaRecord) record()         {}
func (*BodyRecord) record()         {}
func (*AccountRecord) record()      {}
func (*FolderRecord) record()       {}
func (*MessageRecord) record()      {}
func (*SeenRecord) record()         {}
func (*SubscriptionRecord) record() {}
func (*QueueRecord) record()        {}
func (*AutoReplyRecord) record()    {}
func (*RemoteRecord) record()       {}
func (*RemoteFiledRecord) record()  {}
func (*ImportedRecord) record()     {}
func (*CardBookRecord) record()     {}
func (*CardRecord) record()         {}
func (*CacheRecord) record()        {}
