package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/srs"
	"postkasse.dev/postkasse/store"
)

// Why a transaction refuses a recipient or a message, besides the
// policy's reasons (policy.RecipientError, policy.SendAsError). The
// protocol layer maps each to its reply.
var (
	// ErrMailboxFull: the recipient's mailbox is over its quota.
	ErrMailboxFull = errors.New("mailbox full: quota exceeded")
	// ErrTooManyRecipients: the transaction already has as many recipients
	// as Options.MaxRecipients allows.
	ErrTooManyRecipients = errors.New("too many recipients")
	// ErrBounceOnly: an SRS return address takes only mail with the null
	// sender (bounces and other automatic notifications).
	ErrBounceOnly = errors.New("this address accepts only delivery status notifications")
)

// HeaderCountError refuses a submitted message with a header field that
// must appear once (From:) or at most once (Sender:) appearing Count times.
type HeaderCountError struct {
	Field string
	Count int
}

// Error says which field and how often.
func (e *HeaderCountError) Error() string {
	if e.Count == 0 {
		return "message has no " + e.Field + ": header field"
	}
	return "message has " + strconv.Itoa(e.Count) + " " + e.Field + ": header fields"
}

// Facts are what is known about the client of a transaction. They are
// fixed at MAIL; checks of the sender's domain and signatures record their
// results beside them.
type Facts struct {
	RemoteAddr string // "ip:port" of the client
	Helo       string // the name it gave in EHLO/HELO
	TLS        bool
	// Authenticated is the id of the local user who submits the message,
	// "" for mail from other servers (the MX port).
	Authenticated string
	// Trusted is true for a client in the organisation's own networks:
	// per-transaction limits do not apply to it.
	Trusted bool
}

// Transaction is one inbound SMTP transaction: begun at MAIL, recipients
// added one by one, then ended by Data or Abort. It decides everything
// under one directory, the one in force at MAIL: a reload while it runs
// changes nothing about it, so what was accepted at RCPT is delivered.
// It is not safe for concurrent use.
type Transaction struct {
	a     *Agent
	dir   *policy.Directory
	id    string
	facts Facts
	from  string
	size  int64 // announced with SIZE; 0 when not

	accepted []string
	bounces  map[string]string // accepted SRS address -> original sender
	refused  []string          // "address: reason", for the log line
	refusals int               // all of them, also those not in refused
	done     bool
}

// maxLoggedRefusals bounds the refused recipients one log line names (and
// the memory a transaction keeps for it).
const maxLoggedRefusals = 100

// Begin starts a transaction for MAIL FROM:<from> with the announced size
// (0 when none). On submission the envelope sender must be an address the
// user may send as: a *policy.SendAsError otherwise.
func (a *Agent) Begin(facts Facts, from string, size int64) (*Transaction, error) {
	dir := a.opts.Directory()
	from = strings.TrimSpace(from)
	if facts.Authenticated != "" {
		if err := dir.CheckEnvelopeSender(facts.Authenticated, from); err != nil {
			return nil, err
		}
	}
	return &Transaction{a: a, dir: dir, id: newID(), facts: facts, from: from, size: size}, nil
}

// ID is the transaction's delivery id, as in the Received header and logs.
func (t *Transaction) ID() string { return t.id }

// AddRecipient accepts RCPT TO:<rcpt>, or refuses it with an error that
// says why: a *policy.RecipientError, ErrMailboxFull, ErrTooManyRecipients
// or ErrBounceOnly (wrapped, naming the address). Any other error is a
// failure here, not a refusal.
func (t *Transaction) AddRecipient(ctx context.Context, rcpt string) error {
	rcpt = strings.TrimSpace(rcpt)
	err := t.checkRecipient(ctx, rcpt)
	if err != nil {
		t.refusals++
		if len(t.refused) < maxLoggedRefusals {
			t.refused = append(t.refused, rcpt+": "+err.Error())
		}
		return err
	}
	t.accepted = append(t.accepted, rcpt)
	return nil
}

func (t *Transaction) checkRecipient(ctx context.Context, rcpt string) error {
	if limit := t.a.opts.MaxRecipients; limit > 0 && !t.facts.Trusted && len(t.accepted) >= limit {
		return ErrTooManyRecipients
	}
	if t.isOurSRS(rcpt) {
		if orig, ok := t.a.reverseSRS(rcpt); ok {
			if t.from != "" {
				return fmt.Errorf("<%s>: %w", rcpt, ErrBounceOnly)
			}
			if t.bounces == nil {
				t.bounces = make(map[string]string)
			}
			t.bounces[rcpt] = orig
			return nil
		}
		// A forged or expired one names nothing: unknown, like any other.
	}
	if err := t.dir.CheckRecipient(rcpt, t.facts.Authenticated != ""); err != nil {
		return err
	}
	target, ok := t.dir.Resolve(rcpt)
	if !ok || target.Kind == policy.KindGroup {
		return nil // groups hold no mail: each member's copy is filed softly
	}
	mb, _ := t.dir.Mailbox(target.ID)
	err := t.a.opts.Store.CheckRoom(ctx, mb.ID, mb.Quota, max(t.size, 1))
	if errors.Is(err, store.ErrQuota) {
		return fmt.Errorf("<%s>: %w", rcpt, ErrMailboxFull)
	}
	return err
}

// isOurSRS reports whether rcpt has the form of an SRS address in one of
// our domains.
func (t *Transaction) isOurSRS(rcpt string) bool {
	return t.a.opts.SRS != nil && srs.IsSRS(rcpt) && t.dir.IsLocalDomain(domainOf(rcpt))
}

// Recipients returns how many recipients were accepted.
func (t *Transaction) Recipients() int { return len(t.accepted) }

// Data delivers the message to the accepted recipients and ends the
// transaction. It returns only once every copy is stored and every remote
// one queued, durably. A refusal of the whole message is a
// *policy.SendAsError or *HeaderCountError (submission), or a
// *policy.RecipientError for too many hops; nothing is stored then.
func (t *Transaction) Data(ctx context.Context, body []byte) error {
	t.done = true
	h := parseHeader(body)
	if t.facts.Authenticated != "" {
		if err := t.checkSubmission(h); err != nil {
			t.logMessage(h, len(body), nil, err)
			return err
		}
		body, h = t.a.completeHeader(body, h)
	}
	m := &Message{
		ID: t.id, From: t.from, Recipients: t.accepted, Bounces: t.bounces, Authenticated: t.facts.Authenticated, Body: body,
		RemoteAddr: t.facts.RemoteAddr, Helo: t.facts.Helo, TLS: t.facts.TLS,
	}
	rep, err := t.a.deliver(ctx, t.dir, m, h)
	t.logMessage(h, len(body), rep, err)
	return err
}

// Abort ends the transaction without a message (RSET, QUIT, a refused or
// broken DATA). A transaction that named recipients gets its log line.
func (t *Transaction) Abort() {
	if t.done {
		return
	}
	t.done = true
	if len(t.accepted)+t.refusals == 0 {
		return
	}
	attrs := []any{"id", t.id, "client", t.facts.RemoteAddr, "helo", t.facts.Helo, "from", t.from,
		"accepted", t.accepted, "refused", t.refused}
	if t.refusals > len(t.refused) {
		attrs = append(attrs, "refused_not_listed", t.refusals-len(t.refused))
	}
	t.a.log.Info("no message", attrs...)
}

// logMessage writes the one line an operator reads per message: who sent
// what, and where each recipient went.
func (t *Transaction) logMessage(h header, size int, rep *report, err error) {
	outcomes := make([]string, 0, len(t.accepted)+len(t.refused))
	for _, r := range t.accepted {
		outcomes = append(outcomes, r+": "+t.outcome(r, rep, err))
	}
	outcomes = append(outcomes, t.refused...)
	attrs := []any{
		"id", t.id, "client", t.facts.RemoteAddr, "helo", t.facts.Helo, "from", t.from,
		"message_id", h.facts.MessageID, "size", size, "recipients", outcomes,
	}
	if relayed := t.relayed(rep); len(relayed) > 0 {
		attrs = append(attrs, "relayed", relayed)
	}
	if t.refusals > len(t.refused) {
		attrs = append(attrs, "refused_not_listed", t.refusals-len(t.refused))
	}
	if t.facts.Authenticated != "" {
		attrs = append(attrs, "user", t.facts.Authenticated)
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	t.a.log.Info("message", attrs...)
}

// relayed lists the addresses queued beyond the recipients themselves:
// forwarding targets and external members of groups.
func (t *Transaction) relayed(rep *report) []string {
	if rep == nil {
		return nil
	}
	own := make(map[string]bool, len(t.accepted))
	for _, r := range t.accepted {
		if orig, ok := t.bounces[r]; ok {
			r = orig
		}
		own[r] = true
	}
	var out []string
	for addr, id := range rep.queued {
		if !own[addr] {
			out = append(out, addr+": queued "+strconv.FormatUint(id, 10))
		}
	}
	slices.Sort(out)
	return out
}

// outcome is what happened to one accepted recipient.
func (t *Transaction) outcome(rcpt string, rep *report, err error) string {
	switch {
	case err != nil:
		return "refused (" + err.Error() + ")"
	case rep == nil:
		return "unknown"
	}
	if orig, ok := t.bounces[rcpt]; ok {
		rcpt = orig
	}
	if id, ok := rep.queued[rcpt]; ok {
		return "queued " + strconv.FormatUint(id, 10)
	}
	return "delivered"
}
