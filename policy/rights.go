package policy

import (
	"cmp"
	"slices"
	"strings"
)

// ownRights are a user's rights on their own mailbox.
const ownRights = RightRead | RightFull | RightSendAs

// memberRights are what membership of a shared mailbox gives.
const memberRights = RightFull | RightSendAs

// String spells the rights as the config file does, comma-separated.
func (r Rights) String() string {
	names := []struct {
		r    Rights
		name string
	}{{RightRead, "read"}, {RightFull, "full"}, {RightSendAs, "send_as"}, {RightSendOnBehalf, "send_on_behalf"}}
	var out []string
	for _, n := range names {
		if r&n.r != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// computeAccess works out, once per directory, who holds which rights on
// which shared mailbox and so which addresses each user may send as.
func (d *Directory) computeAccess() {
	d.rights = make(map[string]map[string]Rights)
	users := make(map[string][]string) // group ID -> user IDs, memoized
	give := func(accessor string, shared *Mailbox, r Rights) {
		for _, uid := range d.usersOf(accessor, users) {
			if d.rights[uid] == nil {
				d.rights[uid] = make(map[string]Rights)
			}
			d.rights[uid][shared.ID] |= r
		}
	}
	for _, mb := range d.mailboxList {
		if mb.Kind != KindShared {
			continue
		}
		for _, m := range mb.Members {
			give(m, mb, memberRights)
		}
		for k, r := range mb.Grants {
			give(k, mb, r)
		}
	}
	d.reachable = make(map[string][]*Mailbox, len(d.rights))
	for uid, byMailbox := range d.rights {
		for id, r := range byMailbox {
			if r != 0 {
				d.reachable[uid] = append(d.reachable[uid], d.mailboxes[id])
			}
		}
		slices.SortFunc(d.reachable[uid], func(a, b *Mailbox) int { return cmp.Compare(a.Address, b.Address) })
	}
	d.computeSendAs()
}

func (d *Directory) computeSendAs() {
	d.sendAs = make(map[string]addrSet)
	d.sendAsList = make(map[string][]string)
	for _, mb := range d.mailboxList {
		if mb.Kind != KindUser {
			continue
		}
		set := make(addrSet)
		for _, a := range d.Addresses(mb.ID) {
			set.add(a)
		}
		for _, shared := range d.reachable[mb.ID] {
			if d.rights[mb.ID][shared.ID].Has(RightSendAs) {
				for _, a := range d.Addresses(shared.ID) {
					set.add(a)
				}
			}
		}
		d.sendAs[mb.ID] = set
		d.sendAsList[mb.ID] = sortedKeys(set)
	}
}

// usersOf returns the users an accessor address stands for: the user
// itself, or every user in a group, through nested groups. Shared
// mailboxes and external addresses stand for nobody.
func (d *Directory) usersOf(addr string, memo map[string][]string) []string {
	t, ok := d.Resolve(addr)
	if !ok {
		return nil
	}
	switch t.Kind {
	case KindUser:
		return []string{t.ID}
	case KindGroup:
		return d.groupUsers(t.ID, memo, map[string]bool{})
	}
	return nil
}

// groupUsers expands a group to its users. onPath guards against cycles,
// which NewDirectory refuses anyway.
func (d *Directory) groupUsers(id string, memo map[string][]string, onPath map[string]bool) []string {
	if users, ok := memo[id]; ok {
		return users
	}
	if onPath[id] {
		return nil
	}
	onPath[id] = true
	defer delete(onPath, id)
	var users []string
	for _, m := range d.groups[id].Members {
		t, ok := d.Resolve(m)
		switch {
		case !ok:
		case t.Kind == KindUser:
			users = append(users, t.ID)
		case t.Kind == KindGroup:
			users = append(users, d.groupUsers(t.ID, memo, onPath)...)
		}
	}
	slices.Sort(users)
	users = slices.Compact(users)
	memo[id] = users
	return users
}

// Rights returns what user userID may do with mailbox mailboxID: every
// right on their own mailbox; on a shared mailbox, full access and send-as
// for members (directly or through groups) plus whatever grants give;
// nothing otherwise.
func (d *Directory) Rights(userID, mailboxID string) Rights {
	user, ok := d.mailboxes[userID]
	if !ok || user.Kind != KindUser {
		return 0
	}
	if userID == mailboxID {
		return ownRights
	}
	return d.rights[userID][mailboxID]
}

// Reachable returns the shared mailboxes where the user holds any right,
// sorted by address.
func (d *Directory) Reachable(userID string) []*Mailbox {
	return slices.Clone(d.reachable[userID])
}

// SendAs returns every address the user may put in From:, as themself or
// as a shared mailbox where they hold send-as, sorted.
func (d *Directory) SendAs(userID string) []string {
	return slices.Clone(d.sendAsList[userID])
}
