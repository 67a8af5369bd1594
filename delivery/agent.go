// Package delivery carries out what the routing policy decides for a
// message: it files local copies in the store, puts remote ones on the
// outbound queue, in one durable commit, and then sends the automatic
// replies and quota warnings the delivery calls for. SMTP ingress,
// submission, bounces and connected accounts all deliver through it.
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

	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/srs"
	"postkasse.dev/postkasse/store"
)

// autoReplyWindow is how long one sender gets no second automatic reply
// from the same mailbox with the same text (RFC 3834 suggests days).
const autoReplyWindow = 7 * 24 * time.Hour

// Kicker is told when new mail was queued (the outbound queue's runner).
type Kicker interface{ Kick() }

// Metrics counts deliveries, for monitoring (package metrics).
type Metrics interface {
	// Delivered counts what one committed delivery did: local copies
	// filed and remote recipients queued.
	Delivered(copies, queued int)
}

// Options configure an Agent.
type Options struct {
	Store     *store.Store
	Directory func() *policy.Directory // the directory in force now
	Hostname  string                   // for Received and Message-ID
	SRS       *srs.Rewriter            // rewrites senders of forwarded mail
	Queue     Kicker                   // may be nil
	Logger    *slog.Logger
	Now       func() time.Time // nil means time.Now
	// SentFolder and its special use: where a copy of mail sent as a shared
	// mailbox is filed.
	SentFolder, SentSpecialUse string
	Metrics                    Metrics // may be nil
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
}

// Result says what happened to a delivered message.
type Result struct {
	Stored  int      // mailboxes that got a copy
	Queued  int      // remote addresses queued
	Refused []string // recipients refused at this stage (too many hops)
}

// ErrTooManyHops is returned when a message has passed too many servers:
// a loop.
var ErrTooManyHops = errors.New("delivery: too many hops")

// Deliver routes and stores a message. It returns only after every local
// copy is stored and every remote copy queued, durably.
func (a *Agent) Deliver(ctx context.Context, m *Message) (*Result, error) {
	if m.ID == "" {
		m.ID = newID()
	}
	dir := a.opts.Directory()
	now := a.opts.Now()
	header := readHeader(m.Body)
	facts := headerFacts(header)
	recipients, bounces := a.splitSRS(m.Recipients, now)
	plan := dir.Plan(policy.Inbound{
		From: m.From, Recipients: recipients, Authenticated: m.Authenticated, Header: facts, Now: now,
	})
	if len(plan.Refusals) > 0 && len(plan.Deliveries) == 0 && len(plan.Remote) == 0 && len(plan.Forwards) == 0 && len(bounces) == 0 {
		for _, r := range plan.Refusals {
			if r.Code == 554 && r.Enhanced == [3]int{5, 4, 6} {
				return nil, ErrTooManyHops
			}
		}
	}
	body := a.withReceived(m, now)
	d := &store.Delivery{Body: append([]byte("Return-Path: <"+m.From+">\r\n"), body...), Date: now}
	for _, ld := range plan.Deliveries {
		mb, ok := dir.Mailbox(ld.MailboxID)
		if !ok {
			continue
		}
		// The quota was checked when the recipient was accepted: a message
		// that takes the mailbox over it is still filed, never lost.
		d.Targets = append(d.Targets, store.Target{
			Account: mb.ID, Folder: "INBOX", Quota: mb.Quota, SoftQuota: true,
			Prefix: deliveredTo(ld.DeliveredTo),
		})
	}
	// Mail from this server's users leaves with its own sender. Mail from
	// outside that we pass on (external group members, forwarding) leaves
	// with an SRS sender, so SPF holds at the far end and bounces come back
	// to us; bounces to SRS addresses go to the original sender as they are.
	remote, relayed := plan.Remote, plan.Forwards
	if m.Authenticated == "" {
		remote, relayed = nil, append(append([]string(nil), plan.Forwards...), plan.Remote...)
	}
	remote = append(append([]string(nil), remote...), bounces...)
	if len(remote) > 0 {
		d.Queue = append(d.Queue, store.NewQueuedMessage{From: m.From, Recipients: remote, Body: body, Kind: m.Kind})
	}
	if len(relayed) > 0 {
		d.Queue = append(d.Queue, store.NewQueuedMessage{From: a.forwardSender(m.From, now), Recipients: relayed, Body: body, Kind: "forward"})
	}
	if m.Authenticated != "" {
		a.addSentCopy(dir, m, facts, d)
	}
	res, err := a.opts.Store.Deliver(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("deliver %s: %w", m.ID, err)
	}
	result := &Result{Stored: len(d.Targets), Queued: len(remote) + len(relayed)}
	for rcpt := range plan.Refusals {
		result.Refused = append(result.Refused, rcpt)
	}
	if len(d.Queue) > 0 && a.opts.Queue != nil {
		a.opts.Queue.Kick()
	}
	if a.opts.Metrics != nil {
		a.opts.Metrics.Delivered(result.Stored, result.Queued)
	}
	a.log.Info("delivered", "id", m.ID, "from", m.From, "rcpts", len(m.Recipients),
		"stored", result.Stored, "queued", result.Queued, "auth", m.Authenticated != "")
	a.afterDelivery(ctx, dir, m, plan, d, res, now)
	return result, nil
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

// splitSRS takes SRS bounce addresses out of the recipients: mail to them
// goes back to the original sender.
func (a *Agent) splitSRS(rcpts []string, now time.Time) (rest, bounces []string) {
	for _, r := range rcpts {
		if a.opts.SRS != nil && srs.IsSRS(r) {
			if orig, err := a.opts.SRS.Reverse(r, now); err == nil {
				bounces = append(bounces, orig)
				continue
			}
		}
		rest = append(rest, r)
	}
	return rest, bounces
}

// ReverseSRS returns the original address behind an SRS address of ours.
func (a *Agent) ReverseSRS(addr string) (string, bool) {
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
