// Package policy makes postkasse's routing decisions: which mailbox an address
// names, what a group expands to, where forwarding sends a copy, which
// automatic replies are due and who may send as what. It is pure: facts in,
// plans out. It must not import the store, the protocol packages, the config
// package or anything that opens a socket or a file.
package policy

import "time"

// Kind says what an address names.
type Kind uint8

// The kinds of things an address can name.
const (
	KindUser Kind = iota + 1
	KindShared
	KindGroup
)

// String returns the kind as the config file spells it.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindShared:
		return "shared"
	case KindGroup:
		return "group"
	}
	return "unknown"
}

// Rights is a set of permissions one user holds on a mailbox.
type Rights uint8

// The rights of SPEC §3. Members of a shared mailbox hold RightFull|RightSendAs;
// a user holds every right on their own mailbox.
const (
	RightRead Rights = 1 << iota
	RightFull
	RightSendAs
	RightSendOnBehalf
)

// Has reports whether r includes every right in want.
func (r Rights) Has(want Rights) bool { return r&want == want }

// CanRead reports whether r allows looking at the mailbox at all.
func (r Rights) CanRead() bool { return r&(RightRead|RightFull) != 0 }

// Audience says which external senders get an automatic reply.
type Audience uint8

// The audiences of auto_reply.external_audience.
const (
	AudienceNone Audience = iota
	AudienceContacts
	AudienceAll
)

// Forward is a mailbox's forwarding rule.
type Forward struct {
	To       []string
	KeepCopy bool
}

// AutoReply is a mailbox's out-of-office rule.
type AutoReply struct {
	Enabled          bool
	Start, End       time.Time // zero: open-ended
	Subject          string    // "" means "Automatic reply: <original subject>"
	Internal         string
	External         string
	ExternalAudience Audience
}

// Mailbox is a user's or a shared mailbox as the directory knows it.
type Mailbox struct {
	ID           string // permanent id: the TOML key
	Kind         Kind   // KindUser or KindShared
	Address      string // primary address, lower case
	Name         string
	Aliases      []string // lower case
	PasswordHash string   // users only
	IMAP, SMTP   bool     // mail apps
	DAV          bool     // address books over CardDAV
	Quota        int64    // bytes; 0 means unlimited
	Contacts     []string // known senders for automatic replies, lower case
	Forward      *Forward
	AutoReply    *AutoReply

	// Shared mailboxes only.
	Members     []string          // addresses of users or groups; each user gets full + send_as
	Grants      map[string]Rights // address of a user or group -> rights
	SeenPerUser bool
	SentCopy    bool
}

// Group is a distribution group.
type Group struct {
	ID                   string
	Address              string
	Name                 string
	Members              []string // users, shared mailboxes, groups, external addresses
	AllowExternalSenders bool
	SendAutoReplies      bool
}

// DirectoryOptions is everything the directory is built from.
type DirectoryOptions struct {
	Domains   []string
	Mailboxes []Mailbox
	Groups    []Group
	// Postmaster is the address (of a mailbox or group here) that receives
	// postmaster@ of every domain without such an address of its own;
	// "" for none.
	Postmaster string
}
