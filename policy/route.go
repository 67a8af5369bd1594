package policy

// visitState tracks a mailbox through one plan.
type visitState uint8

const (
	unvisited visitState = iota
	visiting             // its forwarding is being followed
	visited
)

// planner is the working state of one Plan call.
type planner struct {
	d    *Directory
	in   Inbound
	plan Plan

	state       map[string]visitState
	order       []string // mailbox IDs in the order first reached
	kept        map[string]bool
	remoteSeen  addrSet
	forwards    []ForwardCopy
	forwardSeen addrSet
	deliveredTo addrSet
	// replyEdges[from] lists mailboxes that answer automatically if from
	// does: reached from it by forwarding, or through groups that all send
	// automatic replies. replyEdges[""] are those reached by the
	// recipients themselves.
	replyEdges map[string][]string
}

func newPlanner(d *Directory, in Inbound) *planner {
	p := &planner{
		d: d, in: in,
		state:       make(map[string]visitState),
		kept:        make(map[string]bool),
		remoteSeen:  make(addrSet),
		forwardSeen: make(addrSet),
		deliveredTo: make(addrSet, len(in.Header.DeliveredTo)),
		replyEdges:  make(map[string][]string),
	}
	for _, a := range in.Header.DeliveredTo {
		p.deliveredTo.add(a)
	}
	return p
}

// route follows one accepted recipient.
func (p *planner) route(rcpt string) {
	t, ok := p.d.Resolve(rcpt)
	switch {
	case !ok:
		// CheckRecipient let it through: an authenticated sender's
		// external recipient.
		p.addRemote(rcpt)
	case t.Kind == KindGroup:
		p.expandGroup(t.ID, "", true, map[string]bool{})
	default:
		p.visit(p.d.mailboxes[t.ID], "", true)
	}
}

// visit brings the message to a mailbox, reached from mailbox from ("" for
// a recipient); replies says whether the path there lets the mailbox
// answer automatically. It reports whether the message ended up somewhere:
// false only when the mailbox is already being visited further up, which
// is a forwarding loop the caller must end by keeping a copy.
func (p *planner) visit(mb *Mailbox, from string, replies bool) bool {
	if replies {
		p.replyEdges[from] = append(p.replyEdges[from], mb.ID)
	}
	switch p.state[mb.ID] {
	case visiting:
		return false
	case visited:
		return true
	}
	p.order = append(p.order, mb.ID)
	p.state[mb.ID] = visiting
	keep := true
	if p.forwardsOn(mb) {
		reached := p.forward(mb)
		keep = mb.Forward.KeepCopy || !reached
	}
	if keep && !p.kept[mb.ID] {
		p.kept[mb.ID] = true
		p.plan.Deliveries = append(p.plan.Deliveries, LocalDelivery{MailboxID: mb.ID, DeliveredTo: mb.Address})
	}
	p.state[mb.ID] = visited
	return true
}

// forwardsOn reports whether the mailbox forwards this message: it has
// targets and the message has not passed it before (Delivered-To).
func (p *planner) forwardsOn(mb *Mailbox) bool {
	if mb.Forward == nil || len(mb.Forward.To) == 0 {
		return false
	}
	for addr := range p.d.own[mb.ID] {
		if p.deliveredTo.has(addr) {
			return false
		}
	}
	return true
}

// forward sends the message on from mb as if addressed to each target. It
// reports whether it reached anything.
func (p *planner) forward(mb *Mailbox) bool {
	reached := false
	for _, to := range mb.Forward.To {
		t, ok := p.d.Resolve(to)
		switch {
		case !ok && p.d.IsLocalDomain(domainOf(to)):
			// Nothing there (NewDirectory refuses this): not reached.
		case !ok:
			p.addForward(to, mb.Address)
			reached = true
		case t.Kind == KindGroup:
			reached = p.expandGroup(t.ID, mb.ID, true, map[string]bool{}) || reached
		default:
			reached = p.visit(p.d.mailboxes[t.ID], mb.ID, true) || reached
		}
	}
	return reached
}

// expandGroup brings the message to every member of a group. Mail that
// came through a group without send_auto_replies gets no automatic reply
// from its members, however deeply nested.
func (p *planner) expandGroup(id, from string, replies bool, onPath map[string]bool) bool {
	if onPath[id] {
		return false // a cycle; NewDirectory refuses them
	}
	onPath[id] = true
	defer delete(onPath, id)
	g := p.d.groups[id]
	replies = replies && g.SendAutoReplies
	reached := false
	for _, m := range g.Members {
		t, ok := p.d.Resolve(m)
		switch {
		case !ok && p.d.IsLocalDomain(domainOf(m)):
		case !ok:
			p.addRemote(m)
			reached = true
		case t.Kind == KindGroup:
			reached = p.expandGroup(t.ID, from, replies, onPath) || reached
		default:
			reached = p.visit(p.d.mailboxes[t.ID], from, replies) || reached
		}
	}
	return reached
}

func (p *planner) addRemote(addr string) {
	key := normalize(addr)
	if p.remoteSeen.has(key) {
		return
	}
	p.remoteSeen.add(key)
	p.plan.Remote = append(p.plan.Remote, addr)
}

func (p *planner) addForward(addr, via string) {
	key := normalize(addr)
	if p.forwardSeen.has(key) {
		return
	}
	p.forwardSeen.add(key)
	p.forwards = append(p.forwards, ForwardCopy{To: addr, Via: via})
}

// answering returns the mailboxes allowed to answer automatically: those
// a recipient reaches along reply edges.
func (p *planner) answering() map[string]bool {
	ok := make(map[string]bool)
	var mark func(id string)
	mark = func(id string) {
		if ok[id] {
			return
		}
		ok[id] = true
		for _, next := range p.replyEdges[id] {
			mark(next)
		}
	}
	for _, id := range p.replyEdges[""] {
		mark(id)
	}
	return ok
}
