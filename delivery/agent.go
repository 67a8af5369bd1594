// Package delivery carries out what the routing policy decides for a
// message: it files local copies in the store, puts remote ones on the
// outbound queue, in one durable commit, and then sends the automatic
// replies and quota warnings the delivery calls for. SMTP ingress,
// submission, bounces and connected accounts all deliver through it.
//
// Mail from SMTP clients arrives as a Transaction (transaction.go): begun
// at MAIL, recipients added, then Data or Abort, all decided under the
// directory in force at MAIL, with typed refusals for the protocol layer
// to answer. Mail from other servers outside the trusted networks is
// checked there (Options.Checks: SPF at MAIL, DKIM and DMARC once after
// DATA) and stamped with its Authentication-Results before any copy is
// made.
//
// It must not import the protocol packages or config.
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"postkasse.dev/postkasse/mailauth"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/srs"
	"postkasse.dev/postkasse/store"
)

// autoReplyWindow is how long one sender gets no second automatic reply
// from the same mailbox with the same text (RFC 3834 suggests days).
const autoReplyWindow = 7 * 24 * time.Hour

// ContactBook tells whether a mailbox's address book lists an address,
// for automatic replies to "contacts".
type ContactBook interface {
	IsContact(ctx context.Context, mailboxID, addr string) (bool, error)
}

// Kicker is told when new mail was queued (the outbound queue's runner).
type Kicker interface{ Kick() }

// Checker runs the checks of who sent a message from another server
// (SPEC §11): SPF at MAIL FROM, DKIM, DMARC and the own-domain rule after
// DATA. *mailauth.Checker implements it.
type Checker interface {
	CheckSPF(ctx context.Context, env mailauth.Envelope) mailauth.SPF
	MailVerdict(env mailauth.Envelope, s mailauth.SPF) mailauth.Verdict
	CheckMessage(ctx context.Context, env mailauth.Envelope, s mailauth.SPF, msg []byte) *mailauth.Report
}

// Metrics counts deliveries, for monitoring (package metrics).
type Metrics interface {
	// Delivered counts what one committed delivery did: local copies
	// filed and remote recipients queued.
	Delivered(copies, queued int)
}

// Options configure an Agent.
type Options struct {
	Store     Store
	Directory func() *policy.Directory // the directory in force now
	Hostname  string                   // for Received and Message-ID
	SRS       *srs.Rewriter            // rewrites senders of forwarded mail
	Queue     Kicker                   // may be nil
	Contacts  ContactBook              // may be nil: only the file's contacts count
	Logger    *slog.Logger
	Now       func() time.Time // nil means time.Now
	// MaxRecipients is how many recipients one transaction of a client
	// outside the trusted networks may have; 0 means no limit.
	MaxRecipients int
	// SentFolder and its special use: where a copy of mail sent as a shared
	// mailbox is filed.
	SentFolder, SentSpecialUse string
	// JunkFolder and its special use: where every local copy of mail that
	// DMARC quarantines is filed instead of INBOX.
	JunkFolder, JunkSpecialUse string
	// Checks returns the checks of mail from other servers in force now
	// (they follow reloads); nil, or a nil Checker, checks nothing. They
	// apply on the MX port to clients outside the trusted networks.
	Checks func() Checker
	// Metrics counts deliveries; may be nil.
	Metrics Metrics
}

// Agent delivers messages.
type Agent struct {
	opts Options
	log  *slog.Logger
}

// New creates an Agent.
func New(opts Options) (*Agent, error) {
	if opts.Store == nil || opts.Directory == nil {
		return nil, errors.New("delivery: Store and Directory are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SentFolder == "" {
		opts.SentFolder, opts.SentSpecialUse = "Sent", `\Sent`
	}
	if opts.JunkFolder == "" {
		opts.JunkFolder, opts.JunkSpecialUse = "Junk", `\Junk`
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{opts: opts, log: log}, nil
}

// Message is an accepted message and what is known about its arrival.
type Message struct {
	ID         string   // for logs and the Received header; made up when empty
	From       string   // envelope sender; "" is the null sender
	Recipients []string // accepted RCPT TO addresses
	// Bounces maps the SRS return addresses among Recipients to the
	// original senders they stand for, as decided when they were accepted.
	Bounces map[string]string
	// Authenticated is the id of the local user who submitted the message,
	// "" for mail that arrived on the MX port.
	Authenticated string
	Body          []byte // as received, CRLF line endings
	RemoteAddr    string
	Helo          string
	TLS           bool
	// Kind marks mail the server wrote itself ("dsn", "auto-reply",
	// "warning"): it is never answered automatically. "" for people's mail.
	Kind string
	// Junk files every local copy in the recipient's Junk folder instead
	// of INBOX (DMARC quarantine).
	Junk bool
}

// report says what a committed delivery did, for the log line of the
// message: where each recipient went.
type report struct {
	stored int
	// queued maps each address put on the outbound queue (a recipient, a
	// forwarding target, the sender behind an SRS bounce address) to its
	// queue id.
	queued map[string]uint64
}

// deliver routes a message under dir and stores it. It returns only after
// every local copy is stored and every remote copy queued, durably. When
// the plan refuses every recipient (too many hops), nothing is stored and
// the refusal is returned.
func (a *Agent) deliver(ctx context.Context, dir *policy.Directory, m *Message, h header) (*report, error) {
	if m.ID == "" {
		m.ID = newID()
	}
	now := a.opts.Now()
	recipients, bounces := splitBounces(m)
	plan := dir.Plan(policy.Inbound{
		From: m.From, Recipients: recipients, Authenticated: m.Authenticated, Header: h.facts, Now: now,
	})
	if err := refusedWhole(plan, bounces); err != nil {
		return nil, err
	}
	if len(plan.Refusals) > 0 {
		// The directory is the one the recipients were accepted under, so
		// only a loop refuses anything here, and then it refuses all.
		a.log.Error("recipients refused after DATA", "id", m.ID, "refusals", fmt.Sprint(plan.Refusals))
	}
	body := a.withReceived(m, now)
	d := &store.Delivery{Body: append([]byte("Return-Path: <"+m.From+">\r\n"), body...), Date: now}
	folder, specialUse := "INBOX", ""
	if m.Junk {
		folder, specialUse = a.opts.JunkFolder, a.opts.JunkSpecialUse
	}
	for _, ld := range plan.Deliveries {
		mb, ok := dir.Mailbox(ld.MailboxID)
		if !ok {
			continue
		}
		// The quota was checked when the recipient was accepted: a message
		// that takes the mailbox over it is still filed, never lost.
		d.Targets = append(d.Targets, store.Target{
			Account: mb.ID, Folder: folder, SpecialUse: specialUse, Quota: mb.Quota, SoftQuota: true,
			Prefix: deliveredTo(ld.DeliveredTo),
		})
	}
	a.queueCopies(d, m, plan, bounces, body, now)
	if m.Authenticated != "" {
		a.addSentCopy(dir, m, h.facts, d)
	}
	res, err := a.opts.Store.Deliver(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("deliver %s: %w", m.ID, err)
	}
	rep := &report{stored: len(d.Targets), queued: make(map[string]uint64)}
	for i, q := range d.Queue {
		for _, r := range q.Recipients {
			if i < len(res.QueueIDs) {
				rep.queued[r] = res.QueueIDs[i]
			}
		}
	}
	if len(d.Queue) > 0 && a.opts.Queue != nil {
		a.opts.Queue.Kick()
	}
	if a.opts.Metrics != nil {
		a.opts.Metrics.Delivered(rep.stored, len(rep.queued))
	}
	a.afterDelivery(ctx, dir, m, plan, d, res, now)
	return rep, nil
}

// queueCopies puts the outbound copies of a message in d.Queue.
//
// Mail from this server's users leaves with its own sender. Mail from
// outside that we pass on (external group members, forwarding) leaves with
// an SRS sender, so SPF holds at the far end and bounces come back to us;
// bounces to SRS addresses go to the original sender as they are. A
// forwarded copy carries the Delivered-To of the mailbox that forwarded
// it, so when it comes back that mailbox files it and forwards no more.
func (a *Agent) queueCopies(d *store.Delivery, m *Message, plan policy.Plan, bounces []string, body []byte, now time.Time) {
	remote := plan.Remote
	var relayed []string
	if m.Authenticated == "" {
		remote, relayed = nil, plan.Remote
	}
	remote = append(append([]string(nil), remote...), bounces...)
	if len(remote) > 0 {
		d.Queue = append(d.Queue, store.NewQueuedMessage{From: m.From, Recipients: remote, Body: body, Kind: m.Kind})
	}
	var sender string
	if len(relayed) > 0 || len(plan.Forwards) > 0 {
		sender = a.forwardSender(m.From, now)
	}
	if len(relayed) > 0 {
		d.Queue = append(d.Queue, store.NewQueuedMessage{From: sender, Recipients: relayed, Body: body, Kind: "forward"})
	}
	byVia := make(map[string]int) // forwarding mailbox -> index in d.Queue
	for _, f := range plan.Forwards {
		i, ok := byVia[f.Via]
		if !ok {
			i = len(d.Queue)
			byVia[f.Via] = i
			marked := append(deliveredTo(f.Via), body...)
			d.Queue = append(d.Queue, store.NewQueuedMessage{From: sender, Body: marked, Kind: "forward"})
		}
		d.Queue[i].Recipients = append(d.Queue[i].Recipients, f.To)
	}
}

// afterDelivery sends what a committed delivery calls for: quota warnings
// and automatic replies. They are best effort: failures are logged.
func (a *Agent) afterDelivery(ctx context.Context, dir *policy.Directory, m *Message, plan policy.Plan, d *store.Delivery, res *store.DeliveryResult, now time.Time) {
	for i, t := range res.Targets {
		if t.QuotaWarning {
			a.sendQuotaWarning(ctx, dir, d.Targets[i].Account, now)
		}
	}
	if m.Kind != "" {
		return
	}
	for _, reply := range plan.AutoReplies {
		if err := a.sendAutoReply(ctx, dir, reply, now); err != nil {
			a.log.Warn("automatic reply failed", "id", m.ID, "mailbox", reply.MailboxID, "to", reply.To, "err", err)
		}
	}
}

// addSentCopy files a message sent as a shared mailbox in its Sent folder,
// marked \Seen, so the whole team sees the answer.
func (a *Agent) addSentCopy(dir *policy.Directory, m *Message, facts policy.Header, d *store.Delivery) {
	mb, ok := dir.SendAsShared(m.Authenticated, facts.From)
	if !ok || !mb.SentCopy {
		return
	}
	d.Targets = append(d.Targets, store.Target{
		Account: mb.ID, Folder: a.opts.SentFolder, SpecialUse: a.opts.SentSpecialUse,
		Flags: []string{store.FlagSeen}, Quota: mb.Quota, SoftQuota: true,
	})
}

// splitBounces takes SRS return addresses out of the recipients: mail to
// them goes back to the original sender.
func splitBounces(m *Message) (rest, bounces []string) {
	for _, r := range m.Recipients {
		if orig, ok := m.Bounces[r]; ok {
			bounces = append(bounces, orig)
			continue
		}
		rest = append(rest, r)
	}
	return rest, bounces
}

// refusedWhole returns why a message goes nowhere when the plan refuses
// every recipient (too many hops), nil otherwise.
func refusedWhole(plan policy.Plan, bounces []string) error {
	if len(plan.Refusals) == 0 || len(plan.Deliveries)+len(plan.Remote)+len(plan.Forwards)+len(bounces) > 0 {
		return nil
	}
	for _, err := range plan.Refusals {
		return err
	}
	return nil
}

// reverseSRS returns the original address behind an SRS address of ours.
func (a *Agent) reverseSRS(addr string) (string, bool) {
	if a.opts.SRS == nil || !srs.IsSRS(addr) {
		return "", false
	}
	orig, err := a.opts.SRS.Reverse(addr, a.opts.Now())
	return orig, err == nil
}

// forwardSender rewrites the envelope sender of forwarded mail with SRS, so
// SPF at the far end sees our domain and bounces come back to us.
func (a *Agent) forwardSender(from string, now time.Time) string {
	if from == "" || a.opts.SRS == nil {
		return from
	}
	rewritten, err := a.opts.SRS.Forward(from, now)
	if err != nil {
		a.log.Warn("srs rewrite failed", "from", from, "err", err)
		return from
	}
	return rewritten
}

// withReceived prepends the Received header of this hop.
func (a *Agent) withReceived(m *Message, now time.Time) []byte {
	var b strings.Builder
	b.WriteString("Received: from ")
	helo := m.Helo
	if helo == "" {
		helo = "localhost"
	}
	b.WriteString(sanitize(helo))
	if m.RemoteAddr != "" {
		b.WriteString(" ([" + sanitize(hostOf(m.RemoteAddr)) + "])")
	}
	b.WriteString("\r\n\tby " + a.opts.Hostname + " (postkasse) with ")
	switch {
	case m.Authenticated != "" && m.TLS:
		b.WriteString("ESMTPSA")
	case m.Authenticated != "":
		b.WriteString("ESMTPA")
	case m.TLS:
		b.WriteString("ESMTPS")
	default:
		b.WriteString("ESMTP")
	}
	b.WriteString(" id " + m.ID)
	if len(m.Recipients) == 1 {
		b.WriteString("\r\n\tfor <" + sanitize(m.Recipients[0]) + ">")
	}
	b.WriteString("; " + now.Format(time.RFC1123Z) + "\r\n")
	out := make([]byte, 0, b.Len()+len(m.Body))
	return append(append(out, b.String()...), m.Body...)
}

// deliveredTo is the Delivered-To line a copy gets for the mailbox it is
// filed in (the mark that stops forwarding loops).
func deliveredTo(addr string) []byte {
	return []byte("Delivered-To: " + addr + "\r\n")
}

// sanitize keeps header-breaking characters out of values that came from
// the client.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '(' || r == ')' || r == '<' || r == '>' || r == ';' {
			return -1
		}
		return r
	}, s)
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
