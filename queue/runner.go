package queue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"postkasse.dev/postkasse/store"
)

// Scheduling limits of the run loop.
const (
	// maxWait bounds the sleep between two looks at the queue, so a message
	// enqueued without a Kick, or a clock jump, is noticed within a minute.
	maxWait = time.Minute
	// storageRetry is how long a message whose state could not be saved
	// rests before it is tried again, so a failing store is not hammered;
	// short enough that a returning database (SPEC §13: recovery within
	// 30 s) finds the queue at work.
	storageRetry = 20 * time.Second
	// dueRetry is how long the runner rests after it could not read the
	// due messages (the database is away), so it is back at work soon
	// after the store is, without hammering it meanwhile.
	dueRetry = 5 * time.Second
	// claimedRetry is how often the runner looks again while due messages
	// are held by another node (a shared store's claims, see
	// Storage.QueueDue), so a dead node's messages, whose lease runs out,
	// are taken over soon after and not only at the next maxWait.
	claimedRetry = 10 * time.Second
	// shutdownGrace is how long attempts in flight may go on after Run's
	// context ends before their connections are cut.
	shutdownGrace = 30 * time.Second
)

// Runner delivers the outbound queue. Create it with New, start Run in a
// goroutine, and Kick it after enqueueing.
type Runner struct {
	opts Options
	log  *slog.Logger
	dns  DNS

	kick        chan struct{} // something new was enqueued
	ended       chan struct{} // an attempt ended: slots may be free
	msgSlots    chan struct{} // one token per message in flight
	domainSlots chan struct{} // one token per domain delivery in flight

	mu       sync.Mutex
	inFlight map[uint64]chan struct{} // closed when that attempt ends
	held     map[uint64]time.Time     // not before then (storage trouble)
}

// New checks opts and returns a Runner.
func New(opts Options) (*Runner, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Runner{
		opts:        opts,
		log:         opts.Logger.With("component", "queue"),
		dns:         opts.DNS,
		kick:        make(chan struct{}, 1),
		ended:       make(chan struct{}, 1),
		msgSlots:    make(chan struct{}, opts.Concurrency),
		domainSlots: make(chan struct{}, opts.Concurrency),
		inFlight:    make(map[uint64]chan struct{}),
		held:        make(map[uint64]time.Time),
	}, nil
}

// Kick wakes the runner: something new was enqueued. It never blocks.
func (r *Runner) Kick() { signal(r.kick) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run delivers due messages until ctx is cancelled. It then waits for the
// attempts in flight: they get shutdownGrace to finish before their
// connections are cut, and their results are saved either way. Run returns
// nil after a cancellation; storage errors are logged and retried, not
// returned.
func (r *Runner) Run(ctx context.Context) error {
	netCtx, cutNet := context.WithCancel(context.WithoutCancel(ctx))
	defer cutNet()
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		timer.Reset(r.dispatch(ctx, netCtx, &wg))
		select {
		case <-ctx.Done():
		case <-r.kick:
		case <-r.ended:
		case <-timer.C:
		}
	}
	cut := time.AfterFunc(shutdownGrace, cutNet)
	defer cut.Stop()
	wg.Wait()
	return nil
}

// dispatch starts attempts for due messages while message slots are free
// and returns how long to sleep before looking again.
func (r *Runner) dispatch(ctx, netCtx context.Context, wg *sync.WaitGroup) time.Duration {
	free := cap(r.msgSlots) - len(r.msgSlots)
	if free == 0 {
		return maxWait // an ending attempt wakes us
	}
	now := r.opts.Now()
	busy := r.busy()
	due, err := r.opts.Storage.QueueDue(ctx, now, free+busy)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("reading due messages", "err", err)
		}
		return dueRetry
	}
	for _, m := range due {
		if _, started := r.start(ctx, netCtx, m, wg, false); !started && cap(r.msgSlots) == len(r.msgSlots) {
			break
		}
	}
	if len(due) == free+busy {
		return maxWait // there may be more; an ending attempt wakes us
	}
	return r.untilNextDue(ctx, now)
}

// busy counts messages that QueueDue may return but that are not startable,
// forgetting holds that have passed.
func (r *Runner) busy() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now()
	for id, until := range r.held {
		if !now.Before(until) {
			delete(r.held, id)
		}
	}
	return len(r.inFlight) + len(r.held)
}

// untilNextDue is the time until the earliest scheduled attempt, at most
// maxWait; at most claimedRetry while a message that is due already is
// neither in flight here nor held back here (another node claimed it).
func (r *Runner) untilNextDue(ctx context.Context, now time.Time) time.Duration {
	all, err := r.opts.Storage.QueueList(ctx)
	if err != nil {
		return dueRetry
	}
	wait := maxWait
	for _, m := range all {
		inFlight := r.isBusy(m.ID)
		d := m.NextAttempt.Sub(now)
		switch {
		case d > 0 && d < wait && !inFlight:
			wait = d
		case d <= 0 && !inFlight && !r.isHeld(m.ID):
			wait = min(wait, claimedRetry)
		}
	}
	return wait
}

func (r *Runner) isBusy(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.inFlight[id]
	return ok
}

// isHeld tells whether id is held back here after storage trouble.
func (r *Runner) isHeld(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.held[id]
	return ok
}

// start begins an attempt on m unless one is under way or m is held. With
// wait it waits for a free message slot (until ctx ends); otherwise it
// gives up when none is free. It returns the channel that closes when the
// attempt on m ends (nil when none was started or running). The attempt
// starts no new connection once ctx ends, and its connections are cut when
// netCtx ends.
func (r *Runner) start(ctx, netCtx context.Context, m store.QueuedMessage, wg *sync.WaitGroup, wait bool) (done chan struct{}, started bool) {
	r.mu.Lock()
	if done, ok := r.inFlight[m.ID]; ok {
		r.mu.Unlock()
		return done, false
	}
	if until, ok := r.held[m.ID]; ok && r.opts.Now().Before(until) && !wait {
		r.mu.Unlock()
		return nil, false
	}
	delete(r.held, m.ID)
	r.mu.Unlock()

	if wait {
		select {
		case r.msgSlots <- struct{}{}:
		case <-ctx.Done():
			return nil, false
		}
	} else {
		select {
		case r.msgSlots <- struct{}{}:
		default:
			return nil, false
		}
	}
	r.mu.Lock()
	if done, ok := r.inFlight[m.ID]; ok { // started by someone else meanwhile
		r.mu.Unlock()
		<-r.msgSlots
		return done, false
	}
	done = make(chan struct{})
	r.inFlight[m.ID] = done
	r.mu.Unlock()

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.inFlight, m.ID)
			r.mu.Unlock()
			<-r.msgSlots
			close(done)
			signal(r.ended)
		}()
		r.attempt(ctx, netCtx, m)
	}()
	return done, true
}

// hold keeps id from being tried again before storageRetry has passed.
func (r *Runner) hold(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held[id] = r.opts.Now().Add(storageRetry)
}

// Flush tries every queued message now, whatever its schedule, and returns
// when those attempts have ended. Attempts already under way are waited for,
// not repeated. Cancelling ctx cuts the attempts Flush started.
func (r *Runner) Flush(ctx context.Context) error {
	all, err := r.opts.Storage.QueueList(ctx)
	if err != nil {
		return fmt.Errorf("queue: flush: %w", err)
	}
	var wg sync.WaitGroup
	var waits []chan struct{}
	for _, m := range all {
		if done, _ := r.start(ctx, ctx, m, &wg, true); done != nil {
			waits = append(waits, done)
		}
	}
	for _, done := range waits {
		select {
		case <-done:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
	}
	return nil
}
