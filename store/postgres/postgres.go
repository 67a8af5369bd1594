// Package postgres keeps postkasse's store in a PostgreSQL database, so that
// several postkasse processes on several machines can serve one
// organisation together (SPEC §13). It has the exported methods of
// *store.Store, with the same meaning, and speaks store's types; the
// conformance suite in store/storetest holds both to one behaviour.
//
// Every write is committed in a transaction before its call returns (with
// PostgreSQL's default synchronous_commit = on, a commit is durable);
// deliveries waiting at the same moment share one (group.go). Writes
// serialise per account: each transaction first locks, in id order, the
// rows of the accounts it touches, so the folder counters (UIDNEXT, message
// and unseen counts, usage) are read and advanced under that lock, and
// transactions do not deadlock on each other (should one still, on a body's
// row, it is run again). A UID is taken by an UPDATE of the folder's row,
// which holds the row until the commit: UIDs from all nodes are distinct
// and increase in commit order.
//
// Changes reach subscribers on every node: see feed.go. The outbound queue
// is claimed with leases: see queue.go. Address books and the cache that
// nodes share (ACME state) are in cards.go and cache.go. The schema is
// postkasse's own and migrates itself: see schema.go.
//
// Like package store, this package knows nothing of SMTP, IMAP, policy or
// config, and no pgx type crosses its API.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"postkasse.dev/postkasse/store"
)

// UID is a message's unique identifier within a folder.
type UID = store.UID

// Options configure a Store.
type Options struct {
	// DSN names the database, in libpq's keyword or URL form, with pgx's
	// pool settings (pool_max_conns: 16 unless given).
	DSN string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Analyze, when set, is called once per stored body, outside any
	// transaction, and its result is kept with every copy of the message.
	Analyze func(body []byte) []byte
	// SearchData, when set, is called once per stored body, outside any
	// transaction, and its result is kept once per body, in the body's
	// row, deleted with it (store.Options.SearchData).
	SearchData func(body []byte) []byte
	// Node names this process in queue claims; "" makes one from the host
	// name, the process id and a random part.
	Node string
	// QueueLease is how long a claim on a queued message holds without
	// renewal; 0 means defaultLease. A live node renews its claims, so
	// only a dead node's claims pass to the others, after at most this
	// long.
	QueueLease time.Duration
	// TxTimeout bounds each transaction, waiting for a connection
	// included; one that runs out fails with store.ErrUnavailable, so a
	// database that hangs or is cut off by the network gets a
	// try-again-later answer, not a client waiting forever. 0: no bound,
	// for commands that read or copy the whole store.
	TxTimeout time.Duration
	// ListenRetry is the pause before the change listener reconnects after
	// losing its connection; 0 means one second.
	ListenRetry time.Duration
	// ChangeRetention is how long recorded changes are kept for nodes
	// that lost their listening connection to catch up from; 0 means a day.
	ChangeRetention time.Duration
	// ObserveCommit, when set, is told how long each write transaction
	// took, from BEGIN to the end of its COMMIT (with synchronous_commit,
	// the WAL flush), failed ones included, for monitoring. It runs on the
	// writing goroutine: it must return at once.
	ObserveCommit func(time.Duration)

	// listenIdle is how long the change listener waits before it pings its
	// connection; 0 means 15 s. Tests shorten it.
	listenIdle time.Duration
}

// defaultMaxConns is the pool size unless the DSN sets pool_max_conns:
// pgxpool's own default (the number of CPUs, at least 4) would make 32 SMTP
// sessions committing at once wait for each other's round trips.
const defaultMaxConns = 16

// Store is an open PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	analyze func([]byte) []byte
	search  func([]byte) []byte // Options.SearchData
	node    string
	lease   time.Duration
	keep    time.Duration       // ChangeRetention
	observe func(time.Duration) // never nil
	// txTimeout is Options.TxTimeout.
	txTimeout time.Duration

	feed   *feed
	closed atomic.Bool
	stop   context.CancelFunc
	wg     sync.WaitGroup

	reach reachability // logs the database's going and coming back

	// deliveries feed the group writers (group.go).
	deliveries  chan *delivery
	groupMu     sync.RWMutex
	groupClosed bool
	groupWG     sync.WaitGroup
}

// Open connects to the database, creates or migrates its schema, and starts
// listening for changes made by every node. It fails when the database
// cannot be reached.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("open store: %w: %w", store.ErrInvalid, err)
	}
	if !strings.Contains(opts.DSN, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	// Named, a node's sessions tell copy-store that a node is running
	// (see connectForCopy).
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = serverAppName
	}
	if !strings.Contains(opts.DSN, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: migrate schema: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{pool: pool, log: log, analyze: opts.Analyze, search: opts.SearchData, node: opts.Node, lease: opts.QueueLease, observe: opts.ObserveCommit, txTimeout: opts.TxTimeout}
	if s.observe == nil {
		s.observe = func(time.Duration) {}
	}
	if s.node == "" {
		s.node = nodeName()
	}
	if s.lease == 0 {
		s.lease = defaultLease
	}
	if s.keep = opts.ChangeRetention; s.keep == 0 {
		s.keep = 24 * time.Hour
	}
	retry := opts.ListenRetry
	if retry == 0 {
		retry = time.Second
	}
	idle := opts.listenIdle
	if idle == 0 {
		idle = 15 * time.Second
	}
	s.feed = newFeed(pool, log, retry, idle)
	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if err := s.feed.start(ctx, runCtx, &s.wg); err != nil {
		stop()
		pool.Close()
		return nil, fmt.Errorf("open store: listen for changes: %w", err)
	}
	s.wg.Add(1)
	go s.maintain(runCtx)
	s.deliveries = make(chan *delivery, 1024)
	for range groupWriters {
		s.groupWG.Add(1)
		go s.groupWriter()
	}
	return s, nil
}

func nodeName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// defaultLease is the queue claims' lease: with the queue runners' look
// at claims held elsewhere (every 10 s), a dead node's messages pass to
// the others within a minute (SPEC §13).
const defaultLease = 45 * time.Second

// Close waits for queued deliveries, stops the change listener and the
// maintenance and closes the pool. Calls made after Close fail with
// store.ErrClosed.
func (s *Store) Close() error {
	s.groupMu.Lock()
	if s.groupClosed {
		s.groupMu.Unlock()
		return nil
	}
	s.groupClosed = true
	close(s.deliveries)
	s.groupMu.Unlock()
	s.groupWG.Wait() // queued deliveries are carried out
	s.closed.Store(true)
	s.stop()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// Subscribe registers fn to be called with every committed change, from
// this node and every other. Changes of one folder arrive in commit order;
// a change's TxID is the folder's change sequence number, comparable with
// the TxID of a FolderView of the same folder (not across folders). fn runs
// on the store's change feed: it must be quick and must not write to the
// store. The returned function unsubscribes.
func (s *Store) Subscribe(fn func(store.Change)) (cancel func()) {
	return s.feed.subscribe(fn)
}

// retryable reports errors after which a whole transaction is simply run
// again: serialization failures and deadlocks.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// maxAttempts bounds the runs of one write after retryable failures.
const maxAttempts = 5

// write runs fn in a transaction and commits it; the changes fn publishes
// are recorded in the same transaction (see txState.record) and delivered
// to this node's subscribers before write returns. fn may run more than
// once, so it must start from scratch each time.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx, w *txState) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	ctx, cancel, bounded := s.bound(ctx)
	defer cancel()
	err := bounded(s.writeOnce(ctx, fn))
	s.reach.note(s, err)
	return err
}

func (s *Store) writeOnce(ctx context.Context, fn func(tx pgx.Tx, w *txState) error) error {
	for attempt := 1; ; attempt++ {
		w := newTxState()
		start := time.Now()
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			defer cutOff(ctx, tx)()
			if err := fn(tx, w); err != nil {
				return err
			}
			return w.record(ctx, tx, s.feed)
		})
		s.observe(time.Since(start))
		if err != nil {
			s.feed.forget(w)
			if retryable(err) && attempt < maxAttempts {
				continue
			}
			return unavailable(err)
		}
		s.feed.delivered(ctx, w)
		return nil
	}
}

// read runs fn in a read-only REPEATABLE READ transaction: everything fn
// reads is one snapshot, as in a bbolt read transaction.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	ctx, cancel, bounded := s.bound(ctx)
	defer cancel()
	err := bounded(unavailable(pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		defer cutOff(ctx, tx)()
		return fn(tx)
	})))
	s.reach.note(s, err)
	return err
}

// statement runs fn, one statement on a pooled connection outside any
// transaction, under the bound of read and write: the caller's context
// (an SMTP session's lasts as long as the server) would otherwise leave
// it waiting on a silent database for ever, and the connection with it.
// Under a deadline pgx's context watcher ends a blocked read.
func (s *Store) statement(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	ctx, cancel, bounded := s.bound(ctx)
	defer cancel()
	err := bounded(unavailable(fn(ctx)))
	s.reach.note(s, err)
	return err
}

// BlobStats reports how many distinct bodies are stored and their bytes.
func (s *Store) BlobStats() (count int, bytes int64, err error) {
	err = s.pool.QueryRow(context.Background(),
		`SELECT count(*), coalesce(sum(length(body)), 0) FROM blobs`).Scan(&count, &bytes)
	return count, bytes, err
}

// SearchDataStats reports how many bodies have search data stored
// (Options.SearchData) and its bytes: one per body, however many copies
// of it the folders hold.
func (s *Store) SearchDataStats() (count int, bytes int64, err error) {
	err = s.pool.QueryRow(context.Background(),
		`SELECT count(search), coalesce(sum(length(search)), 0) FROM blobs`).Scan(&count, &bytes)
	return count, bytes, err
}
