package policy

import (
	"fmt"
	"strings"
	"time"
)

// Explain describes, for people, where mail to addr goes (the `postkasse
// resolve` command): the mailbox or group it names, whether it is an alias
// or subaddress, the group tree, forwarding, automatic replies and whether
// they are in force at now, and the mailboxes and addresses that end up
// with a copy.
func (d *Directory) Explain(addr string, now time.Time) string {
	addr = normalize(addr)
	var b strings.Builder
	b.WriteString(addr + "\n")
	if !validAddress(addr) {
		b.WriteString("  not a valid address\n")
		return b.String()
	}
	t, ok := d.Resolve(addr)
	if !ok {
		if d.IsLocalDomain(domainOf(addr)) {
			b.WriteString("  no such address in a local domain: refused with 550 5.1.1\n")
		} else {
			b.WriteString("  not a local domain: only authenticated users may send there, through the outbound queue\n")
		}
		return b.String()
	}
	if base, tagged := stripSubaddress(addr); tagged {
		if _, exact := d.addrs[addr]; !exact {
			fmt.Fprintf(&b, "  subaddress of %s\n", base)
		}
	}
	if t.Alias {
		fmt.Fprintf(&b, "  alias of %s\n", t.Address)
	}
	if t.Kind == KindGroup {
		d.explainGroup(&b, d.groups[t.ID], now)
	} else {
		d.explainMailbox(&b, d.mailboxes[t.ID], now)
	}
	d.explainOutcome(&b, addr)
	return b.String()
}

func (d *Directory) explainMailbox(b *strings.Builder, mb *Mailbox, now time.Time) {
	fmt.Fprintf(b, "  %s%s\n", label(mb.Kind, mb.ID), quotedName(mb.Name))
	fmt.Fprintf(b, "  addresses: %s\n", strings.Join(d.Addresses(mb.ID), ", "))
	if mb.Kind == KindShared {
		d.explainAccess(b, mb)
	}
	if fw := mb.Forward; fw != nil && len(fw.To) > 0 {
		var to []string
		for _, a := range fw.To {
			to = append(to, a+" ("+d.kindOf(a)+")")
		}
		fmt.Fprintf(b, "  forwarding to %s; keep_copy = %t\n", strings.Join(to, ", "), fw.KeepCopy)
	} else {
		b.WriteString("  forwarding: none\n")
	}
	explainAutoReply(b, mb, now)
}

// explainAccess lists who reaches a shared mailbox and with which rights.
func (d *Directory) explainAccess(b *strings.Builder, mb *Mailbox) {
	var members []string
	for _, m := range mb.Members {
		members = append(members, m+" ("+d.kindOf(m)+")")
	}
	fmt.Fprintf(b, "  members: %s\n", orNone(strings.Join(members, ", ")))
	for _, k := range sortedKeys(mb.Grants) {
		fmt.Fprintf(b, "  grant: %s (%s): %s\n", k, d.kindOf(k), mb.Grants[k])
	}
	b.WriteString("  access:\n")
	listed := false
	for _, u := range d.mailboxList {
		if r := d.Rights(u.ID, mb.ID); r != 0 && u.Kind == KindUser {
			fmt.Fprintf(b, "    %s (%s): %s\n", u.ID, u.Address, r)
			listed = true
		}
	}
	if !listed {
		b.WriteString("    nobody\n")
	}
}

func explainAutoReply(b *strings.Builder, mb *Mailbox, now time.Time) {
	ar := mb.AutoReply
	if ar == nil || !ar.Enabled {
		b.WriteString("  automatic reply: off\n")
		return
	}
	window := ""
	if !ar.Start.IsZero() {
		window += " from " + ar.Start.Format(time.RFC3339)
	}
	if !ar.End.IsZero() {
		window += " until " + ar.End.Format(time.RFC3339)
	}
	state := "not in force now"
	if inWindow(ar, now) {
		state = "in force now"
	}
	fmt.Fprintf(b, "  automatic reply: enabled%s; %s\n", window, state)
	fmt.Fprintf(b, "    internal senders: %s\n", answered(ar.Internal != ""))
	external := "not answered"
	if ar.External != "" {
		switch ar.ExternalAudience {
		case AudienceAll:
			external = "all answered"
		case AudienceContacts:
			external = fmt.Sprintf("contacts answered (%d in the file, and its address book)", len(mb.Contacts))
		}
	}
	fmt.Fprintf(b, "    external senders: %s\n", external)
}

func answered(yes bool) string {
	if yes {
		return "answered"
	}
	return "not answered (no text)"
}

func (d *Directory) explainGroup(b *strings.Builder, g *Group, now time.Time) {
	fmt.Fprintf(b, "  %s%s\n", label(KindGroup, g.ID), quotedName(g.Name))
	if g.AllowExternalSenders {
		b.WriteString("  allow_external_senders = true: anyone may send to it\n")
	} else {
		b.WriteString("  allow_external_senders = false: only authenticated local senders\n")
	}
	fmt.Fprintf(b, "  send_auto_replies = %t\n", g.SendAutoReplies)
	b.WriteString("  members:\n")
	d.explainMembers(b, g, "    ", now, map[string]bool{g.ID: true})
}

// explainMembers writes a group's members as an indented tree.
func (d *Directory) explainMembers(b *strings.Builder, g *Group, indent string, now time.Time, onPath map[string]bool) {
	if len(g.Members) == 0 {
		b.WriteString(indent + "none\n")
	}
	for _, m := range g.Members {
		t, ok := d.Resolve(m)
		fmt.Fprintf(b, "%s%s: %s", indent, m, d.kindOf(m))
		if ok {
			b.WriteString(" " + t.ID)
		}
		switch {
		case ok && t.Kind == KindGroup && onPath[t.ID]:
			b.WriteString(" (cycle)\n")
		case ok && t.Kind == KindGroup:
			b.WriteString("\n")
			onPath[t.ID] = true
			d.explainMembers(b, d.groups[t.ID], indent+"  ", now, onPath)
			delete(onPath, t.ID)
		case ok:
			b.WriteString(mailboxNote(d.mailboxes[t.ID], now) + "\n")
		default:
			b.WriteString("\n")
		}
	}
}

// mailboxNote flags what changes where a group member's copy goes.
func mailboxNote(mb *Mailbox, now time.Time) string {
	var notes []string
	if fw := mb.Forward; fw != nil && len(fw.To) > 0 {
		n := "forwards to " + strings.Join(fw.To, ", ")
		if fw.KeepCopy {
			n += ", keeps a copy"
		}
		notes = append(notes, n)
	}
	if ar := mb.AutoReply; ar != nil && ar.Enabled && inWindow(ar, now) {
		notes = append(notes, "automatic reply in force")
	}
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, "; ") + ")"
}

// explainOutcome routes a message to addr and says who gets a copy.
func (d *Directory) explainOutcome(b *strings.Builder, addr string) {
	p := newPlanner(d, Inbound{})
	p.route(addr)
	var ids []string
	for _, ld := range p.plan.Deliveries {
		ids = append(ids, ld.MailboxID)
	}
	fmt.Fprintf(b, "  stored in: %s\n", orNone(strings.Join(ids, ", ")))
	if len(p.plan.Remote) > 0 {
		fmt.Fprintf(b, "  sent on to: %s\n", strings.Join(p.plan.Remote, ", "))
	}
	if len(p.forwards) > 0 {
		to := make([]string, len(p.forwards))
		for i, f := range p.forwards {
			to[i] = f.To
		}
		fmt.Fprintf(b, "  forwarded (sender rewritten with SRS) to: %s\n", strings.Join(to, ", "))
	}
}

// kindOf names what an address is: user, shared, group or external.
func (d *Directory) kindOf(addr string) string {
	if t, ok := d.Resolve(addr); ok {
		return t.Kind.String()
	}
	if d.IsLocalDomain(domainOf(addr)) {
		return "unknown"
	}
	return "external"
}

func quotedName(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" %q", name)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
