package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"postkasse.dev/postkasse/store"
)

// The change feed across nodes.
//
// Every write that changes a folder advances the folder's change sequence
// (folder_seq, row-locked, so one folder's sequence numbers commit in
// order), stores its changes under that number (changes), and NOTIFYs
// "seq folder token account" on notifyChannel, all in its own transaction:
// the record and the notification exist exactly when the commit does (see
// txState.record). The token names the writing attempt, so that a node can
// tell its own committed changes from those of a write of its own that
// failed after taking the same number.
//
// Each node keeps, per folder, the last sequence number it delivered. It
// learns of new ones from two sides: its own writes, after they commit (so
// a write's changes are delivered before the write returns, as with bbolt),
// and a LISTEN on a dedicated connection (every node's writes). Either way
// it delivers every number from last+1 up to the new one, taking the
// changes of its own writes from memory (they carry the caller's Origin)
// and the others' from the changes table. A lost notification therefore
// costs nothing but a wait: after a lost connection the listener reconnects,
// LISTENs again and then compares every folder's sequence with what it
// delivered, so no change is ever missed.
//
// Within a folder changes arrive in commit order; across folders, in the
// order the notifications arrive, except after a reconnection.
//
// The changes table grows with every write; pruning old rows is left to a
// later version.

const notifyChannel = "postkasse_changes"

// folderKey names one folder of one account.
type folderKey struct {
	account string
	folder  uint64
}

type feed struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	retry time.Duration

	// turn, holding one token, serialises delivery (a lock that a waiter
	// can give up on: the listener may hold it while it waits on a silent
	// database, and a write that committed must not wait for it longer
	// than its own bound). It is never taken by a goroutine that holds a
	// pooled connection, as deliverAll may need one.
	turn chan struct{}
	last map[folderKey]uint64 // delivered up to; guarded by turn

	pendMu  sync.Mutex
	pending map[folderKey]map[uint64]held // this node's writes, not yet delivered

	// idle is how long the listener waits for a notification before it
	// pings its connection.
	idle time.Duration
	// reconnects counts the listener's new connections after a loss, pings
	// its pings, fetches the queries for recorded changes (tests read them).
	reconnects atomic.Int64
	pings      atomic.Int64
	fetches    atomic.Int64

	subMu   sync.RWMutex
	subs    map[int]func(store.Change)
	nextSub int
}

func newFeed(pool *pgxpool.Pool, log *slog.Logger, retry, idle time.Duration) *feed {
	return &feed{
		pool: pool, log: log, retry: retry, idle: idle,
		turn:    make(chan struct{}, 1),
		last:    make(map[folderKey]uint64),
		pending: make(map[folderKey]map[uint64]held),
		subs:    make(map[int]func(store.Change)),
	}
}

func (f *feed) subscribe(fn func(store.Change)) func() {
	f.subMu.Lock()
	id := f.nextSub
	f.nextSub++
	f.subs[id] = fn
	f.subMu.Unlock()
	return func() {
		f.subMu.Lock()
		delete(f.subs, id)
		f.subMu.Unlock()
	}
}

// start LISTENs, then takes every folder's sequence as the starting point:
// any change committed later is notified. The listener runs on runCtx.
func (f *feed) start(ctx, runCtx context.Context, wg *sync.WaitGroup) error {
	conn, err := f.connect(ctx)
	if err != nil {
		return err
	}
	seqs, err := f.sequences(ctx)
	if err != nil {
		conn.Close(ctx)
		return err
	}
	f.turn <- struct{}{}
	for k, seq := range seqs {
		f.last[k] = seq
	}
	<-f.turn
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.run(runCtx, conn)
	}()
	return nil
}

// connect opens the listening connection, outside the pool.
func (f *feed) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := f.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "postkasse change listener"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// run delivers notified changes until ctx ends, reconnecting and catching
// up whenever the connection is lost.
func (f *feed) run(ctx context.Context, conn *pgx.Conn) {
	for {
		err := f.listen(ctx, conn)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("change listener lost its connection", "err", err)
		if conn = f.reconnect(ctx); conn == nil {
			return
		}
		f.log.Info("change listener reconnected")
	}
}

// reconnect LISTENs again and catches up, retrying until it succeeds or
// ctx ends (then it returns nil).
func (f *feed) reconnect(ctx context.Context) *pgx.Conn {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.retry):
		}
		conn, err := f.connect(ctx)
		if err == nil {
			f.reconnects.Add(1)
			if err = f.catchUp(ctx); err == nil {
				return conn
			}
			conn.Close(context.Background())
		}
		f.log.Warn("change listener cannot reconnect", "err", err)
	}
}

// listen delivers notified changes until the connection fails. A quiet
// connection is pinged every f.idle: a peer that vanished without closing
// the connection would otherwise go unnoticed for minutes, and with it every
// other node's changes.
func (f *feed) listen(ctx context.Context, conn *pgx.Conn) error {
	for {
		wait, cancel := context.WithTimeout(ctx, f.idle)
		n, err := conn.WaitForNotification(wait)
		cancel()
		if err != nil && ctx.Err() == nil && wait.Err() != nil {
			// Quiet for f.idle: a timeout leaves the connection usable.
			ping, cancel := context.WithTimeout(ctx, f.idle)
			err = conn.Ping(ping)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			f.pings.Add(1)
			continue
		}
		if err != nil {
			return err
		}
		notes, err := f.drain(ctx, conn, f.parse(nil, n))
		if err != nil {
			return err
		}
		if err := f.deliverAll(ctx, notes); err != nil {
			return err
		}
	}
}

// A commit that changed many folders (a delivery to a thousand mailboxes)
// notifies each, all at once. The listener takes the notifications that
// have arrived already and, once there are several, those that follow
// within drainWait of each other, up to maxNotes, and reads the changes of
// all their folders in one query: one by one, another node's big delivery
// cost a round trip per folder before the last was pushed. A lone
// notification is delivered without waiting.
const (
	drainWait = time.Millisecond
	maxNotes  = 1000
)

// drain adds to notes the notifications that follow (see drainWait).
func (f *feed) drain(ctx context.Context, conn *pgx.Conn, notes []note) ([]note, error) {
	for len(notes) < maxNotes {
		if len(notes) <= 1 && conn.PgConn().Frontend().ReadBufferLen() == 0 {
			return notes, nil
		}
		wait, cancel := context.WithTimeout(ctx, drainWait)
		n, err := conn.WaitForNotification(wait)
		cancel()
		if err != nil && ctx.Err() == nil && wait.Err() != nil {
			return notes, nil // none waiting; the connection stays usable
		}
		if err != nil {
			return nil, err
		}
		notes = f.parse(notes, n)
	}
	return notes, nil
}

// parse appends the notification's note to notes; a malformed one is
// logged and left out.
func (f *feed) parse(notes []note, n *pgconn.Notification) []note {
	k, seq, token, err := parsePayload(n.Payload)
	if err != nil {
		f.log.Error("change notification", "payload", n.Payload, "err", err)
		return notes
	}
	return append(notes, note{k, seq, token})
}

// catchUp delivers whatever was committed while the listener was away.
func (f *feed) catchUp(ctx context.Context) error {
	seqs, err := f.sequences(ctx)
	if err != nil {
		return err
	}
	notes := make([]note, 0, min(len(seqs), maxNotes))
	for k, seq := range seqs {
		notes = append(notes, note{k: k, seq: seq})
		if len(notes) == maxNotes {
			if err := f.deliverAll(ctx, notes); err != nil {
				return err
			}
			notes = notes[:0]
		}
	}
	return f.deliverAll(ctx, notes)
}

// sequences reads every folder's change sequence number.
func (f *feed) sequences(ctx context.Context) (map[folderKey]uint64, error) {
	rows, err := f.pool.Query(ctx, `SELECT account, folder, seq FROM folder_seq`)
	if err != nil {
		return nil, err
	}
	out := make(map[folderKey]uint64)
	var k folderKey
	var seq uint64
	_, err = pgx.ForEachRow(rows, []any{&k.account, &k.folder, &seq}, func() error {
		out[k] = seq
		return nil
	})
	return out, err
}

// parsePayload reads a notification: "seq folder token account" (see
// recordChanges). Anyone allowed to connect can NOTIFY on the channel, so a
// malformed payload is an error, never a panic.
func parsePayload(p string) (k folderKey, seq, token uint64, err error) {
	parts := strings.SplitN(p, " ", 4)
	if len(parts) != 4 {
		return folderKey{}, 0, 0, fmt.Errorf("malformed")
	}
	seq, err1 := strconv.ParseUint(parts[0], 10, 64)
	folder, err2 := strconv.ParseUint(parts[1], 10, 64)
	token, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return folderKey{}, 0, 0, fmt.Errorf("malformed")
	}
	return folderKey{parts[3], folder}, seq, token, nil
}

// held is a write's changes of one folder, kept for delivery. The token is
// the write's (see txState): only a notification or a change record with
// the same token proves that this write is the one that committed under
// the sequence number; a write that failed leaves nothing, but until it
// has forgotten its changes they must not pass for another's.
type held struct {
	token   uint64
	changes []store.Change
}

// hold keeps a write's changes until they are delivered; called in the
// write's transaction just before it commits, so the listener, hearing of
// the commit first, still finds them with their Origin.
func (f *feed) hold(w *txState) {
	f.pendMu.Lock()
	defer f.pendMu.Unlock()
	for _, g := range w.groups {
		p := f.pending[g.key]
		if p == nil {
			p = make(map[uint64]held)
			f.pending[g.key] = p
		}
		p[g.seq] = held{w.token, g.changes}
	}
}

// forget drops the held changes of a write that did not commit.
func (f *feed) forget(w *txState) {
	f.pendMu.Lock()
	defer f.pendMu.Unlock()
	for _, g := range w.groups {
		if p := f.pending[g.key]; p != nil && p[g.seq].token == w.token {
			delete(p, g.seq)
			if len(p) == 0 {
				delete(f.pending, g.key)
			}
		}
	}
}

// takeHeld takes this node's held changes of a folder in (after, upTo].
func (f *feed) takeHeld(k folderKey, after, upTo uint64) map[uint64]held {
	f.pendMu.Lock()
	defer f.pendMu.Unlock()
	p := f.pending[k]
	out := make(map[uint64]held)
	for s, h := range p {
		if s > after && s <= upTo {
			out[s] = h
			delete(p, s)
		}
	}
	if p != nil && len(p) == 0 {
		delete(f.pending, k)
	}
	return out
}

// giveBack returns held changes that could not be delivered.
func (f *feed) giveBack(k folderKey, hs map[uint64]held) {
	if len(hs) == 0 {
		return
	}
	f.pendMu.Lock()
	defer f.pendMu.Unlock()
	p := f.pending[k]
	if p == nil {
		p = make(map[uint64]held)
		f.pending[k] = p
	}
	for s, h := range hs {
		if _, ok := p[s]; !ok {
			p[s] = h
		}
	}
}

// delivered delivers a committed write's changes (and any before them) to
// this node's subscribers. Should that fail, the listener delivers them.
func (f *feed) delivered(ctx context.Context, w *txState) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	notes := make([]note, len(w.groups))
	for i, g := range w.groups {
		notes[i] = note{g.key, g.seq, w.token}
	}
	if err := f.deliverAll(ctx, notes); err != nil {
		f.log.Warn("delivering changes", "folders", len(notes), "err", err)
	}
}

// note says that a folder's changes are committed up to seq; token, when
// not 0, is the token of the write known to have committed seq.
type note struct {
	k     folderKey
	seq   uint64
	token uint64
}

// deliverAll delivers, for each folder noted, its changes after the last
// delivered up to and including the noted number; a later note of a folder
// covers an earlier. This node's held changes of numbers not proven by a
// note's token are checked against the change records, which are read for
// all the folders in one query.
func (f *feed) deliverAll(ctx context.Context, notes []note) error {
	select {
	case f.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the change feed: %w", ctx.Err())
	}
	defer func() { <-f.turn }()
	var todo []note
	at := make(map[folderKey]int)
	for _, n := range notes {
		if n.seq <= f.last[n.k] {
			continue
		}
		if i, ok := at[n.k]; ok {
			if n.seq > todo[i].seq {
				todo[i] = n
			}
			continue
		}
		at[n.k] = len(todo)
		todo = append(todo, n)
	}
	if len(todo) == 0 {
		return nil
	}
	hs := make([]map[uint64]held, len(todo))
	var ranges []changeRange
	for i, n := range todo {
		last := f.last[n.k]
		hs[i] = f.takeHeld(n.k, last, n.seq)
		if !proven(hs[i], n, n.seq) || n.seq-last > 1 {
			ranges = append(ranges, changeRange{n.k, last, n.seq})
		}
	}
	stored, err := f.fetch(ctx, ranges)
	if err != nil {
		for i, n := range todo {
			f.giveBack(n.k, hs[i])
		}
		return err
	}
	f.subMu.RLock()
	defer f.subMu.RUnlock()
	for i, n := range todo {
		f.deliverRange(n, hs[i], stored[n.k])
	}
	return nil
}

// proven reports whether this node's held changes of s are the ones the
// note's write committed.
func proven(hs map[uint64]held, n note, s uint64) bool {
	h, ok := hs[s]
	return ok && s == n.seq && n.token != 0 && h.token == n.token
}

// deliverRange hands a folder's changes after the last delivered up to
// n.seq to the subscribers: this node's own (hs, with their Origin) where
// proven, the recorded ones (stored) otherwise. The caller holds f.turn and
// f.subMu.
func (f *feed) deliverRange(n note, hs, stored map[uint64]held) {
	for s := f.last[n.k] + 1; s <= n.seq; s++ {
		h, ok := hs[s]
		rec, recorded := stored[s]
		switch {
		case ok && (proven(hs, n, s) || recorded && rec.token == h.token):
			// This node's own write: its changes carry their Origin.
		case recorded:
			h = rec
		default:
			f.log.Error("change record missing", "account", n.k.account, "folder", n.k.folder, "seq", s)
		}
		for _, c := range h.changes {
			for _, fn := range f.subs {
				fn(c)
			}
		}
	}
	f.last[n.k] = n.seq
}

// changeRange names a folder's changes in (after, upTo].
type changeRange struct {
	k           folderKey
	after, upTo uint64
}

// fetch reads the recorded changes of the ranges, by folder and number.
func (f *feed) fetch(ctx context.Context, ranges []changeRange) (map[folderKey]map[uint64]held, error) {
	out := make(map[folderKey]map[uint64]held)
	if len(ranges) == 0 {
		return out, nil
	}
	accounts := make([]string, len(ranges))
	folders, after, upTo := make([]int64, len(ranges)), make([]int64, len(ranges)), make([]int64, len(ranges))
	for i, r := range ranges {
		accounts[i], folders[i], after[i], upTo[i] = r.k.account, int64(r.k.folder), int64(r.after), int64(r.upTo)
	}
	f.fetches.Add(1)
	rows, err := f.pool.Query(ctx, `SELECT c.account, c.folder, c.seq, c.token, c.data
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS r(account, folder, after, upto)
		JOIN changes c ON c.account = r.account AND c.folder = r.folder AND c.seq > r.after AND c.seq <= r.upto`,
		accounts, folders, after, upTo)
	if err != nil {
		return nil, err
	}
	var (
		k     folderKey
		seq   uint64
		token int64
		data  []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&k.account, &k.folder, &seq, &token, &data}, func() error {
		cs, err := decodeChanges(data, k, seq)
		if err != nil {
			return fmt.Errorf("change %d of %s/%d: %w", seq, k.account, k.folder, err)
		}
		if out[k] == nil {
			out[k] = make(map[uint64]held)
		}
		out[k][seq] = held{uint64(token), cs}
		return nil
	})
	return out, err
}
