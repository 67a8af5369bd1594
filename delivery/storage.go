package delivery

import (
	"context"
	"time"

	"postkasse.dev/postkasse/store"
)

// Store is the part of the mail store delivery uses: filing, queueing,
// quotas and automatic-reply memory. *store.Store (bbolt) and
// *postgres.Store implement it.
type Store interface {
	CheckRoom(ctx context.Context, accountID string, quota, size int64) error
	Deliver(ctx context.Context, d *store.Delivery) (*store.DeliveryResult, error)
	DeliverRemote(ctx context.Context, key string, st store.RemoteState, digest []byte, d *store.Delivery) (*store.DeliveryResult, error)
	Enqueue(ctx context.Context, msgs ...store.NewQueuedMessage) ([]uint64, error)
	NoteAutoReply(ctx context.Context, accountID, sender, textKey string, now time.Time, window time.Duration) (bool, error)
	Usage(ctx context.Context, accountID string) (int64, error)
}
