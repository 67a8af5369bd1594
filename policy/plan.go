package policy

import "time"

// Inbound is a message about to be delivered, as far as routing cares.
type Inbound struct {
	From       string   // envelope sender, "" = null sender
	Recipients []string // accepted RCPT TO addresses, as given
	// Authenticated is the ID of the local user who submitted the message,
	// "" for mail that came in on the MX port.
	Authenticated string
	Header        Header // facts from the message header
	Now           time.Time
}

// Header holds the facts from a message header that routing looks at.
type Header struct {
	From          []string // From: addresses
	Subject       string
	MessageID     string // with angle brackets, as in the header
	References    string // raw References header
	AutoSubmitted string
	Precedence    string
	ListID        string
	DeliveredTo   []string // every Delivered-To value already in the message (lower case)
	ReceivedCount int
}

// Plan is what to do with one message.
type Plan struct {
	// Deliveries are the mailboxes that keep a copy, one per mailbox.
	Deliveries []LocalDelivery
	// Remote are external addresses to send to with the envelope sender
	// unchanged: recipients of an authenticated sender and external group
	// members.
	Remote []string
	// Forwards are external forwarding targets; the caller rewrites the
	// envelope sender with SRS.
	Forwards    []ForwardCopy
	AutoReplies []AutoReplyPlan
	// Refusals maps recipients (as given) to why they are refused (a
	// *RecipientError); nil when every recipient was accepted.
	Refusals map[string]error
}

// ForwardCopy is one copy forwarded to an external address.
type ForwardCopy struct {
	To string
	// Via is the primary address of the mailbox whose forwarding sent it:
	// the copy carries it in a Delivered-To line, so that if it comes back
	// that mailbox files it once and does not forward it again.
	Via string
}

// LocalDelivery is one copy for one mailbox.
type LocalDelivery struct {
	MailboxID   string
	DeliveredTo string // the mailbox's primary address, for Delivered-To
}

// AutoReplyPlan is one automatic reply to send.
type AutoReplyPlan struct {
	MailboxID  string
	From       string // the mailbox's primary address; MAIL FROM is <>
	To         string // the envelope sender of the original
	Subject    string
	Body       string // the internal or external text
	InReplyTo  string
	References string // the original's References and Message-ID
	// TextKey identifies the reply text, so the caller can send one reply
	// per (mailbox, sender, TextKey) per 7 days and start again when the
	// text changes.
	TextKey string
	// IfContact says the sender is not among the contacts in the file:
	// the reply goes only if the mailbox's own address book lists them,
	// which the caller reads at the time of the reply.
	IfContact bool
}

// Plan routes a message: it expands aliases, subaddresses, groups and
// forwarding into one copy per mailbox, the external addresses to send to,
// and the automatic replies due (SPEC §4). It does no I/O.
//
// Forwarding ends in loops: a mailbox forwards at most once per message,
// not at all when its address is already in a Delivered-To header, and a
// mailbox whose forwarding reaches nothing new keeps the message itself,
// so a loop never loses mail.
//
// Recipients the directory would refuse now (it may have been reloaded
// since RCPT TO) are refused in Refusals; with more than 30 Received
// headers every recipient is.
func (d *Directory) Plan(in Inbound) Plan {
	if in.Header.ReceivedCount > maxReceived {
		refusals := make(map[string]error, len(in.Recipients))
		for _, rcpt := range in.Recipients {
			refusals[rcpt] = &RecipientError{Address: normalize(rcpt), Err: ErrTooManyHops}
		}
		return Plan{Refusals: refusals}
	}
	p := newPlanner(d, in)
	for _, rcpt := range in.Recipients {
		if err := d.CheckRecipient(rcpt, in.Authenticated != ""); err != nil {
			if p.plan.Refusals == nil {
				p.plan.Refusals = make(map[string]error)
			}
			p.plan.Refusals[rcpt] = err
			continue
		}
		p.route(rcpt)
	}
	p.plan.AutoReplies = p.autoReplies()
	for _, f := range p.forwards {
		if !p.remoteSeen.has(normalize(f.To)) {
			p.plan.Forwards = append(p.plan.Forwards, f)
		}
	}
	return p.plan
}
