package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbound queue: bucketQueue holds id -> JSON QueuedMessage (small,
// rewritten after every attempt), bucketQueueBody holds id -> body.

// Enqueue puts messages on the outbound queue in one durable commit.
func (s *Store) Enqueue(ctx context.Context, msgs ...NewQueuedMessage) ([]uint64, error) {
	var ids []uint64
	err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		var err error
		ids, err = enqueue(tx, msgs, time.Now())
		return err
	})
	return ids, err
}

func enqueue(tx *bolt.Tx, msgs []NewQueuedMessage, now time.Time) ([]uint64, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	q, bodies := tx.Bucket(bucketQueue), tx.Bucket(bucketQueueBody)
	ids := make([]uint64, 0, len(msgs))
	for _, m := range msgs {
		if len(m.Recipients) == 0 {
			continue
		}
		id, err := q.NextSequence()
		if err != nil {
			return nil, err
		}
		qm := QueuedMessage{ID: id, From: m.From, Created: now, NextAttempt: now, Kind: m.Kind}
		for _, r := range m.Recipients {
			qm.Recipients = append(qm.Recipients, QueuedRecipient{Address: r})
		}
		if err := putQueued(q, &qm); err != nil {
			return nil, err
		}
		if err := bodies.Put(u64(id), m.Body); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func putQueued(q *bolt.Bucket, m *QueuedMessage) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode queued message %d: %w", m.ID, err)
	}
	return q.Put(u64(m.ID), data)
}

// QueueList returns every queued message, oldest first.
func (s *Store) QueueList(ctx context.Context) ([]QueuedMessage, error) {
	return s.queueScan(ctx, func(QueuedMessage) bool { return true }, 0)
}

// QueueDue returns up to limit messages whose next attempt is due at now,
// the longest-waiting first.
func (s *Store) QueueDue(ctx context.Context, now time.Time, limit int) ([]QueuedMessage, error) {
	out, err := s.queueScan(ctx, func(m QueuedMessage) bool { return !m.NextAttempt.After(now) }, 0)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].NextAttempt.Before(out[j].NextAttempt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *Store) queueScan(ctx context.Context, keep func(QueuedMessage) bool, limit int) ([]QueuedMessage, error) {
	var out []QueuedMessage
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
			var m QueuedMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("queued message %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if keep(m) && (limit == 0 || len(out) < limit) {
				out = append(out, m)
			}
			return nil
		})
	})
	return out, err
}

// QueueGet returns one queued message.
func (s *Store) QueueGet(ctx context.Context, id uint64) (QueuedMessage, error) {
	var m QueuedMessage
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketQueue).Get(u64(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &m)
	})
	return m, err
}

// QueueBody returns a queued message's body.
func (s *Store) QueueBody(ctx context.Context, id uint64) ([]byte, error) {
	var body []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketQueueBody).Get(u64(id))
		if v == nil {
			return ErrNotFound
		}
		body = append([]byte(nil), v...)
		return nil
	})
	return body, err
}

// QueueUpdate saves a queued message's state; once no recipient is pending
// the message and its body leave the queue.
func (s *Store) QueueUpdate(ctx context.Context, m QueuedMessage) error {
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		q := tx.Bucket(bucketQueue)
		if q.Get(u64(m.ID)) == nil {
			return ErrNotFound
		}
		for _, r := range m.Recipients {
			if r.State == RecipientPending {
				return putQueued(q, &m)
			}
		}
		return removeQueued(tx, m.ID)
	})
}

// QueueRemove deletes a message from the queue.
func (s *Store) QueueRemove(ctx context.Context, id uint64) error {
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		if tx.Bucket(bucketQueue).Get(u64(id)) == nil {
			return ErrNotFound
		}
		return removeQueued(tx, id)
	})
}

func removeQueued(tx *bolt.Tx, id uint64) error {
	if err := tx.Bucket(bucketQueue).Delete(u64(id)); err != nil {
		return err
	}
	return tx.Bucket(bucketQueueBody).Delete(u64(id))
}
