package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Errors of Login, for callers to test with errors.Is.
var (
	// ErrUnknownUser means no user has this address.
	ErrUnknownUser = errors.New("policy: unknown user")
	// ErrNotUser means the address names a shared mailbox or a group,
	// which nobody logs in as.
	ErrNotUser = errors.New("policy: address is not a user")
)

// Target is what an address names.
type Target struct {
	Kind    Kind
	ID      string
	Address string // the primary address of the mailbox or group
	Alias   bool   // the address looked up was an alias
}

// entry is one address in the index.
type entry struct {
	kind  Kind
	id    string
	alias bool
}

// Directory answers who is who for one version of the configuration. It is
// built once by NewDirectory and never changes, so it is safe for concurrent
// use; a reload builds a new one and swaps it in whole. The *Mailbox and
// *Group values it hands out are shared: callers must not modify them.
type Directory struct {
	domains     map[string]struct{}
	domainList  []string
	addrs       map[string]entry // normalized address -> owner
	mailboxes   map[string]*Mailbox
	groups      map[string]*Group
	mailboxList []*Mailbox // sorted by ID
	groupList   []*Group   // sorted by ID
	own         map[string]addrSet
	postmaster  string // normalized; "" when not set

	// Derived from membership and grants by computeAccess.
	rights     map[string]map[string]Rights // user ID -> shared mailbox ID -> rights
	reachable  map[string][]*Mailbox        // user ID -> shared mailboxes, by address
	sendAs     map[string]addrSet           // user ID -> addresses allowed in From:
	sendAsList map[string][]string          // the same, sorted
}

// NewDirectory builds a directory and checks it: addresses unique across
// the whole directory and inside Domains, every member and grant naming
// something that exists, no group cycles. All problems are reported
// together, each naming the mailbox or group. The options are copied;
// addresses are stored in lower case.
func NewDirectory(opts DirectoryOptions) (*Directory, error) {
	d := &Directory{
		domains:   make(map[string]struct{}, len(opts.Domains)),
		addrs:     make(map[string]entry),
		mailboxes: make(map[string]*Mailbox, len(opts.Mailboxes)),
		groups:    make(map[string]*Group, len(opts.Groups)),
		own:       make(map[string]addrSet, len(opts.Mailboxes)),
	}
	var problems []error
	problems = append(problems, d.addDomains(opts.Domains)...)
	for i := range opts.Mailboxes {
		problems = append(problems, d.addMailbox(copyMailbox(&opts.Mailboxes[i]))...)
	}
	for i := range opts.Groups {
		problems = append(problems, d.addGroup(copyGroup(&opts.Groups[i]))...)
	}
	d.sortLists()
	problems = append(problems, d.checkReferences()...)
	problems = append(problems, d.setPostmaster(opts.Postmaster)...)
	problems = append(problems, d.checkCycles()...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	d.computeAccess()
	return d, nil
}

// setPostmaster checks that the postmaster address names a mailbox or a
// group of this directory.
func (d *Directory) setPostmaster(addr string) []error {
	addr = normalize(addr)
	if addr == "" {
		return nil
	}
	if _, ok := d.addrs[addr]; !ok {
		return []error{fmt.Errorf("postmaster %q is not the address of a mailbox or group", addr)}
	}
	d.postmaster = addr
	return nil
}

func (d *Directory) sortLists() {
	slices.Sort(d.domainList)
	slices.SortFunc(d.mailboxList, func(a, b *Mailbox) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(d.groupList, func(a, b *Group) int { return cmp.Compare(a.ID, b.ID) })
}

// IsLocalDomain reports whether mail for domain is ours.
func (d *Directory) IsLocalDomain(domain string) bool {
	_, ok := d.domains[normalize(domain)]
	return ok
}

// Domains returns the local domains, sorted, in lower case.
func (d *Directory) Domains() []string { return slices.Clone(d.domainList) }

// Resolve says what an address names. It matches case-insensitively and
// understands subaddresses: anna+tag@ resolves like anna@ unless
// "anna+tag" is itself an address.
func (d *Directory) Resolve(addr string) (Target, bool) {
	addr = normalize(addr)
	e, ok := d.addrs[addr]
	if !ok {
		base, tagged := stripSubaddress(addr)
		if e, ok = d.addrs[base]; !tagged || !ok {
			if e, ok = d.postmasterEntry(base); !ok {
				return Target{}, false
			}
		}
	}
	return Target{Kind: e.kind, ID: e.id, Address: d.primary(e), Alias: e.alias}, true
}

// postmasterEntry is where postmaster@ a domain without an address of its
// own goes: the directory's postmaster, when one is set.
// "postmaster" without a domain goes there too, or, with no postmaster set,
// to postmaster@ the first domain (in sorted order) that has one.
func (d *Directory) postmasterEntry(addr string) (entry, bool) {
	if !d.IsPostmaster(addr) {
		return entry{}, false
	}
	target := d.postmaster
	if target == "" && addr == postmasterLocal {
		for _, domain := range d.domainList {
			if _, ok := d.addrs[postmasterLocal+"@"+domain]; ok {
				target = postmasterLocal + "@" + domain
				break
			}
		}
	}
	e, ok := d.addrs[target]
	e.alias = true
	return e, ok
}

// Postmaster returns who receives postmaster@ of every domain that has no
// such address of its own: the postmaster address of the configuration,
// "" when none is set.
func (d *Directory) Postmaster() string { return d.postmaster }

// Unattended returns the postmaster addresses, one per domain, that
// nobody receives: no address of their own and no postmaster set.
func (d *Directory) Unattended() []string {
	var out []string
	for _, domain := range d.domainList {
		if _, ok := d.Resolve(postmasterLocal + "@" + domain); !ok {
			out = append(out, postmasterLocal+"@"+domain)
		}
	}
	return out
}

// resolveExact is Resolve without subaddresses, for logins.
func (d *Directory) resolveExact(addr string) (entry, bool) {
	e, ok := d.addrs[normalize(addr)]
	return e, ok
}

func (d *Directory) primary(e entry) string {
	if e.kind == KindGroup {
		return d.groups[e.id].Address
	}
	return d.mailboxes[e.id].Address
}

// Mailbox returns a user's or shared mailbox by ID.
func (d *Directory) Mailbox(id string) (*Mailbox, bool) {
	mb, ok := d.mailboxes[id]
	return mb, ok
}

// Group returns a group by ID.
func (d *Directory) Group(id string) (*Group, bool) {
	g, ok := d.groups[id]
	return g, ok
}

// Mailboxes returns every user and shared mailbox, sorted by ID.
func (d *Directory) Mailboxes() []*Mailbox { return slices.Clone(d.mailboxList) }

// Groups returns every group, sorted by ID.
func (d *Directory) Groups() []*Group { return slices.Clone(d.groupList) }

// Login finds the user who logs in with addr, their primary address or an
// alias (subaddresses are not accepted). Shared mailboxes and groups cannot
// log in: ErrNotUser. It checks no password.
func (d *Directory) Login(addr string) (*Mailbox, error) {
	e, ok := d.resolveExact(addr)
	if !ok {
		return nil, ErrUnknownUser
	}
	if e.kind != KindUser {
		return nil, ErrNotUser
	}
	return d.mailboxes[e.id], nil
}

// Addresses returns a mailbox's or group's primary address followed by its
// aliases; nil for an unknown ID.
func (d *Directory) Addresses(mailboxID string) []string {
	if mb, ok := d.mailboxes[mailboxID]; ok {
		return append([]string{mb.Address}, mb.Aliases...)
	}
	if g, ok := d.groups[mailboxID]; ok {
		return []string{g.Address}
	}
	return nil
}

// isOwnAddress reports whether addr (normalized, subaddress allowed) is one
// of the mailbox's own addresses.
func (d *Directory) isOwnAddress(mailboxID, addr string) bool {
	return d.own[mailboxID].hasOrParent(addr)
}
