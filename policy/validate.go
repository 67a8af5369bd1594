package policy

import (
	"fmt"
	"slices"
	"strings"
)

// checkReferences checks that every address a mailbox or group points at
// (members, grants, forwarding targets) names something: a local address
// must exist, and shared-mailbox access goes to users and groups only.
func (d *Directory) checkReferences() []error {
	var problems []error
	for _, mb := range d.mailboxList {
		name := label(mb.Kind, mb.ID)
		for _, m := range mb.Members {
			problems = append(problems, d.checkAccessor(name, "member", m)...)
		}
		for _, k := range sortedKeys(mb.Grants) {
			problems = append(problems, d.checkAccessor(name, "grant to", k)...)
		}
		if mb.Forward != nil {
			for _, to := range mb.Forward.To {
				problems = append(problems, d.checkRecipientRef(name, "forwarding target", to)...)
			}
		}
	}
	for _, g := range d.groupList {
		for _, m := range g.Members {
			problems = append(problems, d.checkRecipientRef(label(KindGroup, g.ID), "member", m)...)
		}
	}
	return problems
}

// checkAccessor checks a member or grant of a shared mailbox: it must be a
// local user or group.
func (d *Directory) checkAccessor(name, what, addr string) []error {
	t, ok := d.Resolve(addr)
	switch {
	case !ok && !d.IsLocalDomain(domainOf(addr)):
		return []error{fmt.Errorf("%s: %s %s is not a local user or group", name, what, addr)}
	case !ok:
		return []error{fmt.Errorf("%s: %s %s resolves to nothing", name, what, addr)}
	case t.Kind == KindShared:
		return []error{fmt.Errorf("%s: %s %s is a shared mailbox; only users and groups can be given access", name, what, addr)}
	}
	return nil
}

// checkRecipientRef checks an address mail is sent on to: external
// addresses are fine, local ones must exist.
func (d *Directory) checkRecipientRef(name, what, addr string) []error {
	if !validAddress(normalize(addr)) {
		return []error{fmt.Errorf("%s: %s %q is not a valid address", name, what, addr)}
	}
	if _, ok := d.Resolve(addr); !ok && d.IsLocalDomain(domainOf(addr)) {
		return []error{fmt.Errorf("%s: %s %s resolves to nothing", name, what, addr)}
	}
	return nil
}

// checkCycles finds groups that contain themselves, directly or through
// other groups. Each cycle is reported once, naming its groups in order.
func (d *Directory) checkCycles() []error {
	const (
		unseen = iota
		open
		closed
	)
	state := make(map[string]int, len(d.groups))
	var problems []error
	var path []string
	var walk func(id string)
	walk = func(id string) {
		state[id] = open
		path = append(path, id)
		for _, sub := range d.subgroups(id) {
			switch state[sub] {
			case unseen:
				walk(sub)
			case open:
				cycle := append(slices.Clone(path[slices.Index(path, sub):]), sub)
				problems = append(problems, fmt.Errorf("%s: group cycle %s", label(KindGroup, sub), strings.Join(cycle, " -> ")))
			}
		}
		path = path[:len(path)-1]
		state[id] = closed
	}
	for _, g := range d.groupList {
		if state[g.ID] == unseen {
			walk(g.ID)
		}
	}
	return problems
}

// subgroups returns the IDs of the groups that are members of group id.
func (d *Directory) subgroups(id string) []string {
	var out []string
	for _, m := range d.groups[id].Members {
		if t, ok := d.Resolve(m); ok && t.Kind == KindGroup {
			out = append(out, t.ID)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
