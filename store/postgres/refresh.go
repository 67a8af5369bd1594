package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// refreshScan bounds how many message rows one batch reads, so that a
// batch stays short where nothing is stale.
const refreshScan = 4096

// RefreshMeta recomputes Options.Analyze's result for every message whose
// stored result stale reports out of date, then Options.SearchData's for
// every body that has none, at most batch messages (bodies) per commit,
// walking them in key order until all are done or ctx ends. Unlike bbolt, it keeps no mark per tag: a restart reads the
// stored results again from the start (cheap next to analysing bodies)
// and recomputes only what is still stale, so tag is not needed here. A
// message whose result changed meanwhile (another node refreshed it) is
// left as that node wrote it.
func (s *Store) RefreshMeta(ctx context.Context, tag string, stale func(meta []byte) bool, batch int) error {
	if s.analyze != nil {
		if err := s.refreshMetas(ctx, stale, batch); err != nil {
			return err
		}
	}
	if s.search != nil {
		return s.refreshSearchData(ctx, batch)
	}
	return nil
}

// refreshMetas is RefreshMeta's walk over the messages.
func (s *Store) refreshMetas(ctx context.Context, stale func(meta []byte) bool, batch int) error {
	var after refreshKey
	for {
		todo, last, done, err := s.staleMessages(ctx, after, stale, batch)
		if err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		if err := s.refreshRows(ctx, todo); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		if done {
			return nil
		}
		after = last
	}
}

// refreshKey is a message row's key, the walk's position.
type refreshKey struct {
	account string
	folder  int64
	uid     int64
}

// staleRow is a message to recompute, with the result it had when read.
type staleRow struct {
	key  refreshKey
	hash []byte
	meta []byte
}

// staleMessages reads up to refreshScan rows after after and returns the
// stale ones (at most batch), the key of the last row looked at, and
// whether the walk is at its end.
func (s *Store) staleMessages(ctx context.Context, after refreshKey, stale func([]byte) bool, batch int) ([]staleRow, refreshKey, bool, error) {
	var todo []staleRow
	last, scanned := after, 0
	err := s.read(ctx, func(tx pgx.Tx) error {
		todo, scanned = todo[:0], 0
		rows, err := tx.Query(ctx, `SELECT account, folder, uid, hash, meta FROM messages
			WHERE (account, folder, uid) > ($1, $2, $3) ORDER BY account, folder, uid LIMIT $4`,
			after.account, after.folder, after.uid, refreshScan)
		if err != nil {
			return err
		}
		var r staleRow
		_, err = pgx.ForEachRow(rows, []any{&r.key.account, &r.key.folder, &r.key.uid, &r.hash, &r.meta}, func() error {
			if len(todo) == batch {
				return nil
			}
			scanned++
			last = r.key
			if stale(r.meta) {
				todo = append(todo, staleRow{key: r.key, hash: append([]byte(nil), r.hash...), meta: append([]byte(nil), r.meta...)})
			}
			return nil
		})
		return err
	})
	done := scanned < refreshScan && len(todo) < batch
	return todo, last, done, err
}

// refreshRows analyses each row's body and stores the new result where
// the stored one is still the one read, in one commit.
func (s *Store) refreshRows(ctx context.Context, todo []staleRow) error {
	if len(todo) == 0 {
		return nil
	}
	metas := make([][]byte, len(todo))
	for i, r := range todo {
		var body []byte
		err := s.statement(ctx, func(ctx context.Context) error {
			return s.pool.QueryRow(ctx, `SELECT body FROM blobs WHERE hash = $1`, r.hash).Scan(&body)
		})
		if err != nil {
			return fmt.Errorf("body of message %d: %w", r.key.uid, err)
		}
		metas[i] = s.analyze(body)
	}
	return s.write(ctx, func(tx pgx.Tx, _ *txState) error {
		batch := &pgx.Batch{}
		for i, r := range todo {
			batch.Queue(`UPDATE messages SET meta = $5 WHERE account = $1 AND folder = $2 AND uid = $3 AND meta = $4`,
				r.key.account, r.key.folder, r.key.uid, r.meta, nonNil(metas[i]))
		}
		return tx.SendBatch(ctx, batch).Close()
	})
}

// refreshSearchData computes the search data of the bodies stored
// without it, batch bodies per commit, in hash order. A body another node
// gave search data meanwhile keeps that.
func (s *Store) refreshSearchData(ctx context.Context, batch int) error {
	after := []byte{}
	for {
		var hashes, bodies [][]byte
		rows, err := s.pool.Query(ctx, `SELECT hash, body FROM blobs WHERE search IS NULL AND hash > $1
			ORDER BY hash LIMIT $2`, after, batch)
		if err != nil {
			return fmt.Errorf("refresh search data: %w", err)
		}
		var hash, body []byte
		_, err = pgx.ForEachRow(rows, []any{&hash, &body}, func() error {
			hashes = append(hashes, append([]byte(nil), hash...))
			bodies = append(bodies, append([]byte(nil), body...))
			return nil
		})
		if err != nil {
			return fmt.Errorf("refresh search data: %w", err)
		}
		if len(hashes) == 0 {
			return nil
		}
		datas := make([][]byte, len(bodies))
		for i, body := range bodies {
			datas[i] = nonNil(s.search(body)) // outside the transaction
		}
		err = s.write(ctx, func(tx pgx.Tx, _ *txState) error {
			b := &pgx.Batch{}
			for i := range hashes {
				b.Queue(`UPDATE blobs SET search = $2 WHERE hash = $1 AND search IS NULL`, hashes[i], datas[i])
			}
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return fmt.Errorf("refresh search data: %w", err)
		}
		if len(hashes) < batch {
			return nil
		}
		after = hashes[len(hashes)-1]
	}
}
