package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// QueueStats counts the queued messages and dates the oldest (ids grow
// with time, so the first is the oldest), for monitoring. The count scans
// the table; the metrics cache it when the queue is big.
func (s *Store) QueueStats(ctx context.Context) (store.QueueStats, error) {
	var st store.QueueStats
	err := s.read(ctx, func(tx pgx.Tx) error {
		var created *string
		err := tx.QueryRow(ctx, `SELECT count(*), (SELECT msg->>'Created' FROM queue ORDER BY id LIMIT 1) FROM queue`).
			Scan(&st.Messages, &created)
		if err != nil || created == nil {
			return err
		}
		st.Oldest, err = time.Parse(time.RFC3339Nano, *created)
		if err != nil {
			return fmt.Errorf("queued message: %w", err)
		}
		return nil
	})
	return st, err
}
