package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"postkasse.dev/postkasse/certs"
	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/connected"
	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/imap"
	"postkasse.dev/postkasse/queue"
	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres"
	"postkasse.dev/postkasse/web"
)

// storeBackend is the store as the server uses it: what each part needs
// (the interfaces of imap, delivery, queue, connected, web and certs) and
// what the server itself asks for its commands (queue listing, usage,
// purge, import, backup). Both backends of SPEC §3's [store] implement it.
type storeBackend interface {
	imap.Store
	delivery.Store
	queue.Storage
	connected.Progress
	web.CardStore
	certs.Store

	// AddCacheEntry shares one value among the nodes (the SRS secret).
	AddCacheEntry(ctx context.Context, key string, data []byte) ([]byte, error)
	QueueStats(ctx context.Context) (store.QueueStats, error)
	QueueList(ctx context.Context) ([]store.QueuedMessage, error)
	QueueGet(ctx context.Context, id uint64) (store.QueuedMessage, error)
	QueueRemove(ctx context.Context, id uint64) error
	Import(ctx context.Context, t store.Target, digest []byte, body []byte, date time.Time) (bool, error)
	Accounts(ctx context.Context) ([]store.AccountStats, error)
	PurgeAccount(ctx context.Context, id string) error
	// Backup writes a consistent snapshot; the PostgreSQL store refuses
	// with store.ErrUnsupported, the database's own tools back it up.
	Backup(ctx context.Context, write func(size int64, snapshot io.WriterTo) error) error
	// Size is the bytes the store takes, for the metrics.
	Size(ctx context.Context) (int64, error)
	Close() error
}

// Both backends serve.
var (
	_ storeBackend = (*store.Store)(nil)
	_ storeBackend = (*postgres.Store)(nil)
)

// openStore opens the store [store] names: the bbolt file in the data
// directory, or the PostgreSQL database of store.dsn. observe is told how
// long each commit took (nil: nothing); timeout bounds the wait for the
// bbolt file's lock (0: the store's default).
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, observe func(time.Duration), timeout time.Duration) (storeBackend, error) {
	return openStoreWith(ctx, cfg, log, storeOptions{observe: observe, timeout: timeout})
}

// storeOptions are openStoreWith's settings beyond the file.
type storeOptions struct {
	observe func(time.Duration) // told each commit's duration; may be nil
	timeout time.Duration       // the wait for the bbolt file's lock; 0: the store's default
	// queueLease is the PostgreSQL queue claims' lease (0: the store's
	// default): tests shorten it to see a dead node's claims pass.
	queueLease time.Duration
	// txTimeout bounds each PostgreSQL transaction (0: no bound); the
	// server sets it so a hanging database gets try-again-later answers.
	txTimeout time.Duration
}

// openStoreWith is openStore with every setting.
func openStoreWith(ctx context.Context, cfg *config.Config, log *slog.Logger, opts storeOptions) (storeBackend, error) {
	if cfg.Store.Backend == config.BackendPostgres {
		st, err := postgres.Open(ctx, postgres.Options{
			DSN: cfg.Store.DSN, Logger: log, Analyze: imap.Analyze, SearchData: imap.SearchData, ObserveCommit: opts.observe,
			QueueLease: opts.queueLease, TxTimeout: opts.txTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", cfg.Store.Where, err)
		}
		return st, nil
	}
	st, err := store.Open(ctx, store.Options{
		Path: storePath(cfg), Logger: log, Analyze: imap.Analyze, SearchData: imap.SearchData, ObserveCommit: opts.observe, Timeout: opts.timeout,
	})
	if err != nil {
		return nil, err // not st: a nil *store.Store in the interface is not nil
	}
	return st, nil
}

// describeStore says where the store is, for `postkasse check`; a DSN is
// shown without its password.
func describeStore(cfg *config.Config) string {
	if cfg.Store.Backend == config.BackendPostgres {
		return "postgres " + cfg.Store.Where
	}
	return "bbolt " + storePath(cfg)
}

// bboltOnly refuses a command that works on the bbolt file (compact,
// backup, restore) when the store is in PostgreSQL, where the database's
// own tools do that work (SPEC §12), and says so; true when it refused.
func bboltOnly(cmd string, cfg *config.Config, stderr io.Writer) bool {
	if cfg.Store.Backend != config.BackendPostgres {
		return false
	}
	fmt.Fprintf(stderr, "postkasse %s: the store is in PostgreSQL (%s), not a bbolt file: use the database's own tools (pg_dump or pg_basebackup to back up and restore, VACUUM to give back space)\n", cmd, cfg.Store.Where)
	return true
}
