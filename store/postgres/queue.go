package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// The outbound queue, shared by every node.
//
// QueueDue is where a node claims messages: it takes, with SELECT ... FOR
// UPDATE SKIP LOCKED, due messages that nobody holds, whose holder's lease
// has run out, or that this node holds already, and marks them held by this
// node until now + Options.QueueLease (by the database's clock, so the
// nodes' clocks need not agree). Two nodes asking at once therefore get
// disjoint sets, and the queue runner of each sees only its own: each
// message is attempted by one node. Returning this node's own claims again
// keeps bbolt's meaning, where QueueDue returns every due message and the
// runner skips those it has in flight.
//
// While a node lives it renews its leases (every third of a lease), so a
// slow delivery keeps its claim; a node that dies stops renewing, and its
// messages pass to the others once the lease has run out. QueueUpdate and
// QueueRemove end the claim.
//
// Due is decided by the caller's now (the queue's clock, which tests fake);
// leases by the database's.

// Enqueue puts messages on the outbound queue in one durable commit.
func (s *Store) Enqueue(ctx context.Context, msgs ...store.NewQueuedMessage) ([]uint64, error) {
	var ids []uint64
	err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
		var err error
		ids, err = enqueue(ctx, tx, msgs, time.Now())
		return err
	})
	return ids, err
}

func enqueue(ctx context.Context, tx pgx.Tx, msgs []store.NewQueuedMessage, now time.Time) ([]uint64, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	ids := make([]uint64, 0, len(msgs))
	for _, m := range msgs {
		if len(m.Recipients) == 0 {
			continue
		}
		var id uint64
		if err := tx.QueryRow(ctx, `SELECT nextval('queue_id_seq')`).Scan(&id); err != nil {
			return nil, err
		}
		qm := store.QueuedMessage{ID: id, From: m.From, Created: now, NextAttempt: now, Kind: m.Kind}
		for _, r := range m.Recipients {
			qm.Recipients = append(qm.Recipients, store.QueuedRecipient{Address: r})
		}
		data, err := json.Marshal(&qm)
		if err != nil {
			return nil, fmt.Errorf("encode queued message: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO queue (id, msg, next_attempt_ns, body) VALUES ($1, $2, $3, $4)`,
			id, string(data), now.UnixNano(), nonNil(m.Body))
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func decodeQueued(data []byte) (store.QueuedMessage, error) {
	var m store.QueuedMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("queued message: %w", err)
	}
	return m, nil
}

func collectQueued(rows pgx.Rows) ([]store.QueuedMessage, error) {
	var out []store.QueuedMessage
	var data []byte
	_, err := pgx.ForEachRow(rows, []any{&data}, func() error {
		m, err := decodeQueued(data)
		out = append(out, m)
		return err
	})
	return out, err
}

// QueueList returns every queued message, oldest first.
func (s *Store) QueueList(ctx context.Context) ([]store.QueuedMessage, error) {
	var out []store.QueuedMessage
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT msg FROM queue ORDER BY id`)
		if err != nil {
			return err
		}
		out, err = collectQueued(rows)
		return err
	})
	return out, err
}

// QueueDue claims for this node up to limit messages (limit <= 0: all)
// whose next attempt is due at now and returns them, the longest-waiting
// first. See the comment at the top of this file.
func (s *Store) QueueDue(ctx context.Context, now time.Time, limit int) ([]store.QueuedMessage, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var out []store.QueuedMessage
	err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
		rows, err := tx.Query(ctx, `UPDATE queue q SET claimed_by = $3, lease_until = now() + $4 * interval '1 millisecond'
			FROM (SELECT id FROM queue
				WHERE next_attempt_ns <= $1 AND (claimed_by IS NULL OR claimed_by = $3 OR lease_until < now())
				ORDER BY next_attempt_ns, id LIMIT $2 FOR UPDATE SKIP LOCKED) due
			WHERE q.id = due.id RETURNING q.msg`, now.UnixNano(), lim, s.node, s.lease.Milliseconds())
		if err != nil {
			return err
		}
		out, err = collectQueued(rows)
		return err
	})
	slices.SortStableFunc(out, func(a, b store.QueuedMessage) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return compareIDs(a.ID, b.ID)
	})
	return out, err
}

func compareIDs(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// renewClaims extends this node's leases.
func (s *Store) renewClaims(ctx context.Context) error {
	return s.statement(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `UPDATE queue SET lease_until = now() + $2 * interval '1 millisecond'
			WHERE claimed_by = $1 AND lease_until >= now()`, s.node, s.lease.Milliseconds())
		return err
	})
}

// QueueGet returns one queued message.
func (s *Store) QueueGet(ctx context.Context, id uint64) (store.QueuedMessage, error) {
	var m store.QueuedMessage
	err := s.read(ctx, func(tx pgx.Tx) error {
		var data []byte
		err := tx.QueryRow(ctx, `SELECT msg FROM queue WHERE id = $1`, id).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		m, err = decodeQueued(data)
		return err
	})
	return m, err
}

// QueueBody returns a queued message's body.
func (s *Store) QueueBody(ctx context.Context, id uint64) ([]byte, error) {
	var body []byte
	err := s.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT body FROM queue WHERE id = $1`, id).Scan(&body)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return body, err
}

// QueueUpdate saves a queued message's state and ends any claim on it;
// once no recipient is pending the message and its body leave the queue.
func (s *Store) QueueUpdate(ctx context.Context, m store.QueuedMessage) error {
	pending := slices.ContainsFunc(m.Recipients, func(r store.QueuedRecipient) bool { return r.State == store.RecipientPending })
	data, err := json.Marshal(&m)
	if err != nil {
		return fmt.Errorf("encode queued message %d: %w", m.ID, err)
	}
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		q := `DELETE FROM queue WHERE id = $1`
		args := []any{m.ID}
		if pending {
			q = `UPDATE queue SET msg = $2, next_attempt_ns = $3, claimed_by = NULL, lease_until = NULL WHERE id = $1`
			args = append(args, string(data), m.NextAttempt.UnixNano())
		}
		tag, err := tx.Exec(ctx, q, args...)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrNotFound
		}
		return err
	})
}

// QueueRemove deletes a message from the queue.
func (s *Store) QueueRemove(ctx context.Context, id uint64) error {
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		tag, err := tx.Exec(ctx, `DELETE FROM queue WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrNotFound
		}
		return err
	})
}
