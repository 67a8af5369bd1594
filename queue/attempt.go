package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"postkasse.dev/postkasse/store"
)

// storageTimeout bounds each storage call of an attempt. Storage calls do
// not use the attempt's contexts: results must be saved even during
// shutdown.
const storageTimeout = time.Minute

// attemptState is one attempt on one message, shared by its domain
// deliveries.
type attemptState struct {
	mu       sync.Mutex
	msg      store.QueuedMessage // the state being built; recipients failing this round stay Pending until settled
	header   []byte              // the original header, for DSNs
	failures []failure           // permanent failures of this round, not yet settled
	lastErr  string
	gone     bool // the message has left the storage
	unsaved  bool // a save failed
	skipped  bool // shutdown came before some destinations were tried
}

// failure is a recipient that failed permanently (or expired) this round.
type failure struct {
	idx    int
	status string // enhanced status for the DSN
	reply  string // the reply that explains it
	note   string // extra words for the human-readable part, may be ""
}

// attempt runs one delivery round for m: every pending recipient is tried
// once (grouped by destination), results are saved as each destination
// finishes, and failures are reported to the sender.
//
// A remote server's 250 and the save of "delivered" are two steps: a crash
// between them (or a lost connection after the final dot) leaves the
// recipient pending, and it is delivered again on the next round. That
// window, one storage commit long, is the only source of duplicates.
func (r *Runner) attempt(ctx, netCtx context.Context, m store.QueuedMessage) {
	sctx := context.WithoutCancel(ctx)
	now := r.opts.Now()
	a := &attemptState{msg: cloneMessage(m)}
	a.msg.Attempts++
	a.msg.NextAttempt = r.nextAttempt(m.Created, now, a.msg.Attempts)

	body, err := r.body(sctx, m.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return // removed meanwhile
	case err != nil:
		r.log.Error("reading queued message", "id", m.ID, "err", err)
		a.lastErr = fmt.Sprintf("reading the queued message: %v", err)
		r.finish(sctx, a, now)
		return
	}
	a.header = headerOf(body)
	if !now.Before(m.Created.Add(r.opts.Lifetime)) {
		r.expire(a)
		r.finish(sctx, a, now)
		return
	}
	body = r.sign(m, body)
	groups, bad := groupRecipients(a.msg, r.opts.Smarthost)
	for _, i := range bad {
		o := localOutcome(failed, "5.1.3", "bad recipient address %q", a.msg.Recipients[i].Address)
		a.failures = append(a.failures, failure{idx: i, status: o.status, reply: o.reply()})
	}
	logMsg := a.msg // a.msg changes under a.mu; the log needs only its identity
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			select {
			case r.domainSlots <- struct{}{}:
			case <-ctx.Done():
				// Shutting down: these recipients wait for the next run.
				a.mu.Lock()
				a.skipped = true
				a.mu.Unlock()
				return
			}
			defer func() { <-r.domainSlots }()
			res := r.deliverGroup(netCtx, m.From, g, body)
			r.logGroup(logMsg, g, res)
			r.record(sctx, a, g, res)
		})
	}
	wg.Wait()
	r.finish(sctx, a, now)
}

func (r *Runner) body(ctx context.Context, id uint64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	return r.opts.Storage.QueueBody(ctx, id)
}

// sign DKIM-signs body when a signer is configured. A message that cannot
// be signed goes out unsigned: holding it back would not make the key work.
func (r *Runner) sign(m store.QueuedMessage, body []byte) []byte {
	if r.opts.Signer == nil {
		return body
	}
	signed, err := r.opts.Signer.Sign(body)
	if err != nil {
		r.log.Warn("DKIM signing failed; sending unsigned", "id", m.ID, "err", err)
		return body
	}
	return signed
}

// expire turns every pending recipient into a failure: the message has been
// queued for longer than the lifetime.
func (r *Runner) expire(a *attemptState) {
	note := fmt.Sprintf("Delivery was given up after %s of retrying.", r.opts.Lifetime)
	for i, rc := range a.msg.Recipients {
		if rc.State != store.RecipientPending {
			continue
		}
		reply := rc.Reply
		if reply == "" {
			reply = a.msg.LastError
		}
		if reply == "" {
			reply = "delivery time expired"
		}
		a.failures = append(a.failures, failure{idx: i, status: "4.4.7", reply: reply, note: note})
	}
}

// record applies one group's outcomes and saves them at once, so that a
// recipient delivered here is never retried because another domain of the
// same message is slow.
func (r *Runner) record(ctx context.Context, a *attemptState, g group, res groupResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, o := range res.outcomes {
		idx := g.idx[i]
		rc := &a.msg.Recipients[idx]
		rc.Reply = o.reply()
		switch o.result {
		case delivered:
			rc.State = store.RecipientDelivered
			r.opts.Metrics.Sent()
			r.logRecipient(a.msg.ID, rc.Address, "delivered", rc.Reply)
		case failed:
			a.failures = append(a.failures, failure{idx: idx, status: o.status, reply: o.reply()})
		default:
			a.lastErr = o.reply()
			r.opts.Metrics.Deferred()
			r.logRecipient(a.msg.ID, rc.Address, "deferred", rc.Reply)
		}
	}
	r.save(ctx, a)
}

// logRecipient writes the one line per recipient outcome that an admin
// finds by grepping for the queue id or the address.
func (r *Runner) logRecipient(id uint64, rcpt, outcome, reply string) {
	r.log.Info("recipient "+outcome, "id", id, "rcpt", rcpt, "outcome", outcome, "reply", reply)
}

// save writes a.msg; the caller holds a.mu.
func (r *Runner) save(ctx context.Context, a *attemptState) {
	if a.gone {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	err := r.opts.Storage.QueueUpdate(ctx, cloneMessage(a.msg))
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.gone = true
	case err != nil:
		r.log.Error("saving queue state", "id", a.msg.ID, "err", err)
		a.unsaved = true
	case !hasPending(a.msg):
		a.gone = true // the storage drops a message with nobody left to try
	}
}

// finish settles this round's failures (notifying the sender), sends the
// one delay warning when it is due, and saves the final state.
func (r *Runner) finish(ctx context.Context, a *attemptState, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gone {
		return
	}
	if len(a.failures) > 0 {
		r.settle(ctx, a, now)
	}
	r.warnDelay(ctx, a, now)
	if a.skipped {
		// Untried recipients should not wait out a backoff they did not earn.
		a.msg.NextAttempt = now
	}
	a.msg.LastError = a.lastErr
	if a.lastErr == "" && len(a.failures) > 0 {
		a.msg.LastError = a.failures[len(a.failures)-1].reply
	}
	r.save(ctx, a)
	if a.unsaved {
		r.hold(a.msg.ID)
	}
}

// settle marks this round's failures failed, after the sender has been told.
// When the notification cannot be submitted the recipients stay pending, so
// the next round fails them again and retries the notification: a DSN may
// come twice, but is not lost.
func (r *Runner) settle(ctx context.Context, a *attemptState, now time.Time) {
	if bounceable(a.msg) {
		report := r.report(a, now, actionFailed)
		for _, f := range a.failures {
			report.Recipients = append(report.Recipients, dsnRecipient{
				Address: a.msg.Recipients[f.idx].Address, Status: f.status, Reply: f.reply, Note: f.note,
			})
		}
		if err := r.submitDSN(ctx, a.msg, report); err != nil {
			r.log.Error("delivery failure notification not submitted; the recipients stay queued", "id", a.msg.ID, "err", err)
			return
		}
	} else {
		r.log.Info("no failure notification", "id", a.msg.ID, "from", a.msg.From, "kind", a.msg.Kind)
	}
	for _, f := range a.failures {
		rc := &a.msg.Recipients[f.idx]
		rc.State, rc.Reply = store.RecipientFailed, f.reply
		r.logRecipient(a.msg.ID, rc.Address, "bounced", f.reply)
	}
	r.opts.Metrics.Bounced(len(a.failures))
}

// warnDelay sends the one "still trying" notification once DelayWarning has
// passed and recipients are still pending.
func (r *Runner) warnDelay(ctx context.Context, a *attemptState, now time.Time) {
	if a.msg.DelayWarned || r.opts.DelayWarning < 0 || now.Sub(a.msg.Created) < r.opts.DelayWarning {
		return
	}
	report := r.report(a, now, actionDelayed)
	report.RetryUntil = a.msg.Created.Add(r.opts.Lifetime)
	for i, rc := range a.msg.Recipients {
		if rc.State != store.RecipientPending || slices.ContainsFunc(a.failures, func(f failure) bool { return f.idx == i }) {
			continue
		}
		status := "4.0.0"
		if code, s, ok := parseReply(rc.Reply); ok && code/100 == 4 {
			status = s
		}
		report.Recipients = append(report.Recipients, dsnRecipient{Address: rc.Address, Status: status, Reply: rc.Reply})
	}
	if len(report.Recipients) == 0 {
		return
	}
	if bounceable(a.msg) {
		if err := r.submitDSN(ctx, a.msg, report); err != nil {
			r.log.Error("delay notification not submitted", "id", a.msg.ID, "err", err)
			return
		}
	}
	a.msg.DelayWarned = true
}

// bounceable reports whether the sender of m may get a DSN: never the null
// sender, and never for messages that are themselves automatic.
func bounceable(m store.QueuedMessage) bool {
	return m.From != "" && m.Kind != "dsn" && m.Kind != "auto-reply"
}

func (r *Runner) report(a *attemptState, now time.Time, action string) dsnReport {
	return dsnReport{
		Hostname: r.opts.Hostname,
		Sender:   a.msg.From,
		QueueID:  a.msg.ID,
		Arrival:  a.msg.Created,
		Date:     now,
		Action:   action,
		Header:   a.header,
	}
}

func (r *Runner) submitDSN(ctx context.Context, m store.QueuedMessage, rep dsnReport) error {
	dsn, err := buildDSN(rep)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	if err := r.opts.Bounces.Submit(ctx, "", []string{m.From}, dsn, "dsn"); err != nil {
		return fmt.Errorf("submit DSN: %w", err)
	}
	addrs := make([]string, len(rep.Recipients))
	for i, rc := range rep.Recipients {
		addrs[i] = rc.Address
	}
	r.log.Info("delivery status notification", "id", m.ID, "to", m.From, "action", rep.Action, "recipients", addrs)
	return nil
}

func hasPending(m store.QueuedMessage) bool {
	return slices.ContainsFunc(m.Recipients, func(rc store.QueuedRecipient) bool {
		return rc.State == store.RecipientPending
	})
}

func cloneMessage(m store.QueuedMessage) store.QueuedMessage {
	m.Recipients = slices.Clone(m.Recipients)
	return m
}
