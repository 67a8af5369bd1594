// Package connected pulls mail in from connected accounts (SPEC §8): every
// interval it reads each account's remote folder over IMAP, as a client
// (go-imap's imapclient), and files each new message into a local folder
// through the delivery agent, exactly once.
//
// Exactly once rests on the store: the account's progress (remote
// UIDVALIDITY and the last remote UID passed) is saved in the same commit
// as the message, so a crash or restart neither loses nor repeats one.
//
// Decisions where the SPEC is silent:
//   - Progress is kept per local mailbox, host, user name and remote
//     folder: changing any of these starts afresh. The first round files
//     every message the remote folder holds, not only later arrivals.
//   - Every message is checked by content (SHA-256 of the bytes as
//     fetched) against what the account filed before. When the remote
//     folder's UIDVALIDITY changes its UIDs mean nothing any more and it is
//     read from the start: its old messages, whether present at once or
//     copied back later, are passed over, only new ones are filed. The
//     price: a byte-identical copy of a message filed before is not filed
//     again.
//   - The remote copy is read with BODY.PEEK in a read-only EXAMINE, so its
//     flags stay as they were. With delete_remote the folder is selected
//     read-write and, at the end of each round, every remote message up to
//     the last saved UID is flagged \Deleted and expunged (UID EXPUNGE where
//     offered): only what the store has already committed, and a copy left
//     behind by a crash is deleted at the next round.
//   - The mailbox's quota is a hard limit: a message that does not fit
//     stays on the remote, the round stops there, and it is tried again
//     later; nothing after it is filed before it.
//   - Failures (unreachable host, TLS, bad credentials, a missing folder,
//     quota) are logged, never with the password, and retried after the
//     interval, doubling with each failure in a row up to an hour. They
//     never stop the server or other accounts.
//
// It must not import config, the protocol packages (smtp, imap) or
// go-smtp.
package connected

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"sync"
	"time"

	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/store"
)

// Account is one connected account.
type Account struct {
	Mailbox        string // the local mailbox's id
	Host           string // "host:port"
	Security       string // "tls", "starttls" or "none"
	Username       string
	Password       string
	Folder         string // remote folder
	Into           string // local folder
	IntoSpecialUse string // of the local folder, when it is created
	Interval       time.Duration
	DeleteRemote   bool
}

// progressKey names the account's progress in the store.
func (a Account) progressKey() string {
	return a.Mailbox + "\x00" + a.Host + "\x00" + a.Username + "\x00" + a.Folder
}

// Progress is the store's memory of connected accounts (*store.Store).
type Progress interface {
	RemoteProgress(ctx context.Context, key string) (store.RemoteState, error)
	RemoteFiled(ctx context.Context, key string, digest []byte) (bool, error)
	SaveRemoteProgress(ctx context.Context, key string, st store.RemoteState) error
}

// Filer files a pulled message and saves the progress with it
// (*delivery.Agent).
type Filer interface {
	FileRemote(ctx context.Context, m *delivery.RemoteMessage) error
}

// Options configure a Runner.
type Options struct {
	Store  Progress
	Filer  Filer
	Logger *slog.Logger
	// TLSConfig is the base of the TLS configuration for remote servers;
	// nil means the system's roots. The server name is set per account.
	TLSConfig *tls.Config
	// Timeout bounds connecting and each wait for the remote server's
	// answer; 0 means one minute.
	Timeout time.Duration
	// MaxBackoff is the longest wait after failures in a row (never less
	// than the account's interval); 0 means an hour.
	MaxBackoff time.Duration
}

// Runner pulls mail from a set of accounts, each on its own goroutine.
type Runner struct {
	opts    Options
	log     *slog.Logger
	mu      sync.Mutex
	workers map[Account]*worker
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New creates a Runner with no accounts.
func New(opts Options) (*Runner, error) {
	if opts.Store == nil || opts.Filer == nil {
		return nil, errors.New("connected: Store and Filer are required")
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{opts: opts, log: log, workers: make(map[Account]*worker)}, nil
}

// Set makes accounts the ones pulled from: an account no longer listed, or
// changed, stops (and is waited for, so two never read one remote folder
// at once); a new one starts with a round at once; an unchanged one
// carries on undisturbed. Of two accounts with the same mailbox, host,
// user name and folder only the first is pulled.
func (r *Runner) Set(accounts []Account) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := make(map[Account]bool, len(accounts))
	keys := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		if keys[a.progressKey()] {
			r.log.Warn("connected account listed twice: pulled once", "mailbox", a.Mailbox, "host", a.Host, "username", a.Username, "folder", a.Folder)
			continue
		}
		keys[a.progressKey()] = true
		want[a] = true
	}
	for a, w := range r.workers {
		if !want[a] {
			w.cancel()
			<-w.done
			delete(r.workers, a)
		}
	}
	for a := range want {
		if r.workers[a] == nil {
			r.workers[a] = r.start(a)
		}
	}
}

// Close stops every account and waits for them. A message being filed is
// committed or not at all; the remote connection is closed at once.
func (r *Runner) Close() {
	r.Set(nil)
}

func (r *Runner) start(a Account) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		r.run(ctx, a)
	}()
	return w
}

// run pulls from one account until ctx ends.
func (r *Runner) run(ctx context.Context, a Account) {
	log := r.log.With("mailbox", a.Mailbox, "host", a.Host, "username", a.Username, "folder", a.Folder)
	failures := 0
	for {
		filed, err := r.round(ctx, a, log)
		if ctx.Err() != nil {
			return
		}
		wait := a.Interval
		if err != nil {
			failures++
			wait = backoff(a.Interval, failures, r.opts.MaxBackoff)
			log.Warn("connected account failed", "err", err, "failures", failures, "retry_in", wait)
		} else {
			failures = 0
			log.Debug("connected account read", "filed", filed)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after failures in a row: the interval, doubling with
// each further failure, at most limit (or the interval, if that is longer).
func backoff(interval time.Duration, failures int, limit time.Duration) time.Duration {
	limit = max(limit, interval)
	wait := interval
	for i := 1; i < failures && wait < limit; i++ {
		wait *= 2
	}
	return min(wait, limit)
}
