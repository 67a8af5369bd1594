package queue

import (
	"math/rand/v2"
	"time"
)

// maxBackoff caps the wait between two attempts.
const maxBackoff = time.Hour

// backoff is the wait after the attempts'th attempt: first, doubled for each
// attempt after the first, at most maxBackoff, then moved by jitter (a value
// in [-1, 1]) times 10% so that messages deferred together spread out.
func backoff(first time.Duration, attempts int, jitter float64) time.Duration {
	d := min(first, maxBackoff)
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	jitter = max(-1, min(1, jitter))
	return d + time.Duration(float64(d)*0.1*jitter)
}

// nextAttempt schedules the attempt after the attempts'th one, never later
// than the message's expiry so that the sender hears of it on time (once
// expired, a message only stays queued when its notification could not be
// sent, and that is retried with the usual backoff).
func (r *Runner) nextAttempt(created, now time.Time, attempts int) time.Time {
	next := now.Add(backoff(r.opts.RetryAfter, attempts, rand.Float64()*2-1))
	if expiry := created.Add(r.opts.Lifetime); expiry.After(now) && next.After(expiry) {
		next = expiry
	}
	return next
}
