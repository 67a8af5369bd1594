package main

import (
	"context"
	"io"
	"time"

	"postkasse.dev/postkasse/certs"
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
	Close() error
}

// Both backends serve.
var (
	_ storeBackend = (*store.Store)(nil)
	_ storeBackend = (*postgres.Store)(nil)
)
