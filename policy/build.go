package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// copyMailbox returns a deep copy with addresses in lower case, so the
// directory owns what it hands out and compares with plain map lookups.
func copyMailbox(src *Mailbox) *Mailbox {
	mb := *src
	mb.ID = strings.TrimSpace(mb.ID)
	mb.Address = normalize(mb.Address)
	mb.Aliases = normalizeAll(mb.Aliases)
	mb.Contacts = normalizeAll(mb.Contacts)
	mb.Members = trimAll(mb.Members)
	mb.Grants = maps.Clone(mb.Grants)
	if mb.Forward != nil {
		fw := *mb.Forward
		fw.To = trimAll(fw.To)
		mb.Forward = &fw
	}
	if mb.AutoReply != nil {
		ar := *mb.AutoReply
		mb.AutoReply = &ar
	}
	return &mb
}

func copyGroup(src *Group) *Group {
	g := *src
	g.ID = strings.TrimSpace(g.ID)
	g.Address = normalize(g.Address)
	g.Members = trimAll(g.Members)
	return &g
}

func normalizeAll(addrs []string) []string {
	if addrs == nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = normalize(a)
	}
	return out
}

// trimAll keeps the spelling of addresses that may be external: their
// local part is the remote server's business.
func trimAll(addrs []string) []string {
	if addrs == nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = strings.TrimSpace(a)
	}
	return out
}

// label names a mailbox or group in error messages as the config does.
func label(kind Kind, id string) string {
	return kind.String() + " " + id
}

func (d *Directory) addDomains(domains []string) []error {
	var problems []error
	for _, dom := range domains {
		dom = normalize(dom)
		if dom == "" || strings.ContainsAny(dom, "@ \t") {
			problems = append(problems, fmt.Errorf("domain %q is not a domain name", dom))
			continue
		}
		if _, dup := d.domains[dom]; dup {
			problems = append(problems, fmt.Errorf("domain %s is listed twice", dom))
			continue
		}
		d.domains[dom] = struct{}{}
		d.domainList = append(d.domainList, dom)
	}
	return problems
}

func (d *Directory) addMailbox(mb *Mailbox) []error {
	if mb.Kind != KindUser && mb.Kind != KindShared {
		return []error{fmt.Errorf("mailbox %s: kind must be user or shared, not %s", mb.ID, mb.Kind)}
	}
	name := label(mb.Kind, mb.ID)
	if mb.ID == "" {
		return []error{fmt.Errorf("%s: empty id", name)}
	}
	if _, dup := d.mailboxes[mb.ID]; dup {
		return []error{fmt.Errorf("%s: id is used twice", name)}
	}
	var problems []error
	if mb.Kind == KindUser && (len(mb.Members) > 0 || len(mb.Grants) > 0) {
		problems = append(problems, fmt.Errorf("%s: only shared mailboxes have members and grants", name))
	}
	if ar := mb.AutoReply; ar != nil && !ar.Start.IsZero() && !ar.End.IsZero() && !ar.End.After(ar.Start) {
		problems = append(problems, fmt.Errorf("%s: automatic reply ends before it starts", name))
	}
	own := make(addrSet, 1+len(mb.Aliases))
	own.add(mb.Address)
	problems = append(problems, d.addAddress(name, mb.Address, entry{kind: mb.Kind, id: mb.ID})...)
	for _, alias := range mb.Aliases {
		own.add(alias)
		problems = append(problems, d.addAddress(name, alias, entry{kind: mb.Kind, id: mb.ID, alias: true})...)
	}
	d.mailboxes[mb.ID] = mb
	d.mailboxList = append(d.mailboxList, mb)
	d.own[mb.ID] = own
	return problems
}

func (d *Directory) addGroup(g *Group) []error {
	name := label(KindGroup, g.ID)
	if g.ID == "" {
		return []error{fmt.Errorf("%s: empty id", name)}
	}
	if _, dup := d.groups[g.ID]; dup {
		return []error{fmt.Errorf("%s: id is used twice", name)}
	}
	problems := d.addAddress(name, g.Address, entry{kind: KindGroup, id: g.ID})
	d.groups[g.ID] = g
	d.groupList = append(d.groupList, g)
	return problems
}

// addAddress indexes one address of the mailbox or group called name.
func (d *Directory) addAddress(name, addr string, e entry) []error {
	if !validAddress(addr) {
		return []error{fmt.Errorf("%s: %q is not a valid address", name, addr)}
	}
	if _, local := d.domains[domainOf(addr)]; !local {
		return []error{fmt.Errorf("%s: address %s is outside the local domains (%s)",
			name, addr, strings.Join(slices.Sorted(maps.Keys(d.domains)), ", "))}
	}
	if prev, dup := d.addrs[addr]; dup {
		return []error{fmt.Errorf("%s: address %s is already used by %s", name, addr, label(prev.kind, prev.id))}
	}
	d.addrs[addr] = e
	return nil
}
