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

// Size reports the bytes the store's tables take in the database, with
// their indexes and TOAST (where the bodies are): the tables of the schema
// the store lives in (the first of the search path, as in migrate). Not
// pg_database_size, which also counts the system catalogues (about 7 MiB)
// and whatever else the database holds. Like the bbolt file, it shrinks
// only when the database gives space back (VACUUM FULL), not at every
// expunge.
func (s *Store) Size(ctx context.Context) (int64, error) {
	var size int64
	err := s.statement(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&size)
	})
	if err != nil {
		return 0, fmt.Errorf("store size: %w", err)
	}
	return size, nil
}
