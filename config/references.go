package config

import (
	"fmt"
	"slices"
	"strings"
)

// rights are the names a grant may use (SPEC §3).
var rights = []string{"read", "full", "send_as", "send_on_behalf"}

func (v *validator) groups(raw map[string]rawGroup) []*Group {
	var out []*Group
	for _, key := range sortedKeys(raw) {
		r := raw[key]
		p := "group." + quoteKeyPart(key)
		if strings.TrimSpace(key) == "" {
			v.errorf(p, "needs a name: the key is the group's permanent id")
		}
		g := &Group{Key: key, Name: r.Name, Members: r.Members, AllowExternalSenders: r.AllowExternalSenders, SendAutoReplies: r.SendAutoReplies}
		g.Address = strings.ToLower(strings.TrimSpace(r.Address))
		if g.Address == "" {
			v.errorf(p, "has no address")
		} else {
			v.claim(p+".address", g.Address, "group")
		}
		out = append(out, g)
	}
	return out
}

// references checks, once every address of the file is known, that the
// addresses mailboxes and groups point at name something.
func (v *validator) references(cfg *Config) {
	for _, mb := range cfg.Shared {
		v.sharedReferences(mb)
	}
	for _, list := range [][]*Mailbox{cfg.Users, cfg.Shared} {
		for _, mb := range list {
			if mb.Forward == nil {
				continue
			}
			kind := "user."
			if mb.Shared {
				kind = "shared."
			}
			for i, to := range mb.Forward.To {
				v.localTarget(fmt.Sprintf("%s%s.forward.to[%d]", kind, quoteKeyPart(mb.Key), i), to)
			}
		}
	}
	for _, g := range cfg.Groups {
		p := "group." + quoteKeyPart(g.Key)
		for i, m := range g.Members {
			m = strings.ToLower(strings.TrimSpace(m))
			g.Members[i] = m
			key := fmt.Sprintf("%s.members[%d]", p, i)
			if !validAddress(m) {
				v.errorf(key, "%q is not an email address", m)
				continue
			}
			v.localTarget(key, m)
		}
	}
}

// postmaster checks the top-level postmaster key: a mailbox or group of
// this file, which receives postmaster@ of every domain (SPEC §4).
func (v *validator) postmaster(raw string, cfg *Config) {
	addr := strings.ToLower(strings.TrimSpace(raw))
	if addr == "" {
		return
	}
	if !validAddress(addr) || !v.domains[domainOf(addr)] || v.kinds[addr] == "" {
		v.errorf("postmaster", "%q is not the address of a user, shared mailbox or group of this file", raw)
		return
	}
	cfg.Postmaster = addr
}

// localTarget refuses an address in a local domain that names nothing:
// mail sent there would only bounce. Addresses elsewhere are not ours to
// judge.
func (v *validator) localTarget(key, addr string) {
	if validAddress(addr) && v.domains[domainOf(addr)] && v.kinds[addr] == "" {
		v.errorf(key, "%q is in a local domain but names no user, shared mailbox or group", addr)
	}
}

// sharedReferences checks a shared mailbox's members and grants: each must
// be a user or a group (whose users it stands for).
func (v *validator) sharedReferences(mb *Mailbox) {
	p := "shared." + quoteKeyPart(mb.Key)
	for i, m := range mb.Members {
		m = strings.ToLower(strings.TrimSpace(m))
		mb.Members[i] = m
		if k := v.kinds[m]; k != "user" && k != "group" {
			v.errorf(fmt.Sprintf("%s.members[%d]", p, i), "%q is not a user or group of this file", m)
		}
	}
	grants := make(map[string][]string, len(mb.Grants))
	for _, addr := range sortedKeys(mb.Grants) {
		a := strings.ToLower(strings.TrimSpace(addr))
		key := p + ".grants." + quoteKeyPart(addr)
		if k := v.kinds[a]; k != "user" && k != "group" {
			v.errorf(key, "%q is not a user or group of this file", addr)
		}
		if _, dup := grants[a]; dup {
			v.errorf(key, "%q is granted twice (addresses are case-insensitive)", addr)
		}
		if len(mb.Grants[addr]) == 0 {
			v.errorf(key, "grants no rights (use %s)", quotedList(rights))
		}
		for _, r := range mb.Grants[addr] {
			if !slices.Contains(rights, r) {
				v.errorf(key, "%q is not a right (use %s)", r, quotedList(rights))
			}
		}
		grants[a] = mb.Grants[addr]
	}
	mb.Grants = grants
}

// cycles refuses groups that contain themselves, directly or not.
func (v *validator) cycles(groups []*Group) {
	byAddr := make(map[string]*Group)
	for _, g := range groups {
		byAddr[g.Address] = g
	}
	const (
		onPath = iota + 1 // zero: not visited yet
		done
	)
	state := make(map[string]int)
	var visit func(g *Group, path []string) bool
	visit = func(g *Group, path []string) bool {
		switch state[g.Key] {
		case onPath:
			start := max(slices.Index(path, g.Address), 0)
			cycle := slices.Concat(path[start:], []string{g.Address})
			v.errorf("group."+quoteKeyPart(g.Key)+".members", "groups form a cycle: %s", strings.Join(cycle, " -> "))
			return true
		case done:
			return false
		}
		state[g.Key] = onPath
		defer func() { state[g.Key] = done }()
		for _, m := range g.Members {
			if child, ok := byAddr[m]; ok && visit(child, append(path, g.Address)) {
				return true
			}
		}
		return false
	}
	for _, g := range groups {
		visit(g, nil)
	}
}

// quotedList formats names as "a", "b", "c".
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
