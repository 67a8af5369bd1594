package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"postkasse.dev/postkasse/store"
)

// group is the pending recipients of one message that share a destination:
// a domain, or everything when a smarthost is used.
type group struct {
	key   string   // lower-case domain, or the smarthost address
	rcpts []string // envelope addresses, in queue order
	idx   []int    // their positions in the message's Recipients
}

// groupResult is what one delivery to a group did.
type groupResult struct {
	outcomes []outcome // one per recipient, aligned with group.rcpts
	host     string    // the server that answered, if any
	tls      bool
}

// groupRecipients splits m's pending recipients by destination; bad lists
// the positions of recipients without a usable domain.
func groupRecipients(m store.QueuedMessage, smarthost string) (groups []group, bad []int) {
	byKey := map[string]int{}
	for i, rc := range m.Recipients {
		if rc.State != store.RecipientPending {
			continue
		}
		key := domainOf(rc.Address)
		if key == "" {
			bad = append(bad, i)
			continue
		}
		if smarthost != "" {
			key = smarthost
		}
		n, ok := byKey[key]
		if !ok {
			n = len(groups)
			byKey[key] = n
			groups = append(groups, group{key: key})
		}
		groups[n].rcpts = append(groups[n].rcpts, rc.Address)
		groups[n].idx = append(groups[n].idx, i)
	}
	return groups, bad
}

// domainOf returns the lower-case domain of addr, "" when there is none.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return ""
	}
	return strings.ToLower(addr[at+1:])
}

// mode is the TLS policy for every connection of this runner. A
// smarthost in "may" mode is treated exactly as an MX: STARTTLS when
// offered, plaintext otherwise (credentials are still sent only over TLS).
func (r *Runner) mode() tlsMode {
	if r.opts.Smarthost == "" {
		return tlsOpportunistic
	}
	switch r.opts.SmarthostTLS {
	case SmarthostTLS:
		return tlsImplicit
	case SmarthostPlain:
		return tlsNone
	case SmarthostSTARTTLS:
		return tlsStartTLS
	}
	return tlsOpportunistic
}

// deliverGroup delivers body to one group over one connection, trying the
// destination's servers in order until one answers.
func (r *Runner) deliverGroup(ctx context.Context, from string, g group, body []byte) groupResult {
	ctx, cancel := context.WithTimeout(ctx, sessionTimeout)
	defer cancel()
	all := func(o outcome) groupResult {
		res := groupResult{outcomes: make([]outcome, len(g.rcpts))}
		for i := range res.outcomes {
			res.outcomes[i] = o
		}
		return res
	}
	targets, o := r.targets(ctx, g.key)
	if o != nil {
		return all(*o)
	}
	mode := r.mode()
	var errs []error
	for _, t := range targets {
		s, err := r.connect(ctx, t, mode)
		if errors.Is(err, errTLSFailed) && mode == tlsOpportunistic {
			r.log.Info("STARTTLS failed; trying again without TLS", "host", t.host, "addr", t.addr, "err", err)
			s, err = r.connect(ctx, t, tlsNone)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", t.host, t.addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		outcomes := transact(s, from, g.rcpts, body)
		s.close()
		return groupResult{outcomes: outcomes, host: t.host, tls: s.tls}
	}
	// Nobody took the connection (or the smarthost refused our login):
	// always worth another try, whatever the reply code was.
	res := all(localOutcome(deferred, "4.4.1", "%v", errors.Join(errs...)))
	if len(targets) > 0 {
		res.host = targets[len(targets)-1].host
	}
	return res
}

// logGroup writes the one info line per delivery attempt.
func (r *Runner) logGroup(m store.QueuedMessage, g group, res groupResult) {
	var byResult [failed + 1][]string
	reply := ""
	for i, o := range res.outcomes {
		byResult[o.result] = append(byResult[o.result], g.rcpts[i])
		if o.result != delivered || reply == "" {
			reply = o.reply()
		}
	}
	result := "delivered"
	switch {
	case len(byResult[delivered]) == len(g.rcpts):
	case len(byResult[delivered]) > 0:
		result = "partial"
	case len(byResult[failed]) > 0:
		result = "failed"
	default:
		result = "deferred"
	}
	r.log.Info("delivery attempt",
		"id", m.ID, "kind", m.Kind, "attempt", m.Attempts, "domain", g.key, "host", res.host, "tls", res.tls,
		"result", result, "delivered", byResult[delivered], "deferred", byResult[deferred],
		"failed", byResult[failed], "reply", reply)
}
