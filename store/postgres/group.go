package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// Group commit: deliveries waiting at the same moment share one
// transaction. A delivery holds its accounts' rows locked from its first
// statement to the commit, so on a busy mailbox the commits, not the
// statements, bound the rate; sharing them is what bbolt's single writer
// does too. groupWriters transactions run at once; each takes every
// delivery waiting when it starts, up to maxGroup, and locks the accounts
// of all of them up front, in id order, so groups cannot deadlock.
//
// A delivery that fails makes its group fail: it is then carried out alone
// (to get its own error) and the others again together, as in bbolt.

const (
	// groupWriters: fewer writers make larger groups. BenchmarkDeliverOne
	// (32 senders, eight mailboxes) on the 2-core test machine: 1,750 µs
	// a delivery with a transaction each, 1,080 µs with 4 writers, 500 to
	// 650 µs with 2 or 1. A database on its own, larger machine would
	// take more writers.
	groupWriters = 2
	maxGroup     = 64
	// groupTimeout bounds one shared transaction; callers' contexts do not
	// reach it, since a queued delivery may be committed for them already.
	groupTimeout = time.Minute
)

// submit hands a delivery to the group writers and waits for its outcome.
func (s *Store) submit(ctx context.Context, op *delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.groupMu.RLock()
	if s.groupClosed {
		s.groupMu.RUnlock()
		return store.ErrClosed
	}
	s.deliveries <- op
	s.groupMu.RUnlock()
	// Once queued, the delivery is carried out even if ctx ends: the
	// caller must not believe it failed when it may have been committed.
	return <-op.done
}

// groupWriter commits waiting deliveries until the queue is closed.
func (s *Store) groupWriter() {
	defer s.groupWG.Done()
	for op := range s.deliveries {
		group := []*delivery{op}
	drain:
		for len(group) < maxGroup {
			select {
			case next, ok := <-s.deliveries:
				if !ok {
					break drain
				}
				group = append(group, next)
			default:
				break drain
			}
		}
		s.commitGroup(group)
	}
}

// errInGroup marks the delivery that made a shared transaction fail.
var errInGroup = errors.New("store: delivery failed in a group")

func (s *Store) commitGroup(group []*delivery) {
	for len(group) > 0 {
		failed := -1
		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
			failed = -1
			var ids []string
			for _, op := range group {
				for _, t := range op.d.Targets {
					if t.Account != "" { // refused by the delivery itself
						ids = append(ids, t.Account)
					}
				}
			}
			accounts, err := lockAccounts(ctx, tx, true, ids...)
			if err != nil {
				return err
			}
			fail := func(i int, err error) error {
				if len(group) > 1 {
					failed = i
					return errInGroup
				}
				return err
			}
			uids := newUIDPlan()
			for i, op := range group {
				if err := op.plan(accounts, uids); err != nil {
					return fail(i, err)
				}
			}
			if err := uids.take(ctx, tx); err != nil {
				return err
			}
			batch, rows, bodies := &pgx.Batch{}, &newRows{}, newBodies{}
			for i, op := range group {
				if err := op.file(ctx, tx, w, uids, batch, rows, bodies); err != nil {
					return fail(i, err)
				}
			}
			rows.queue(batch)
			bodies.queue(batch)
			queueAccounts(batch, accounts)
			if err := w.queueRecord(batch); err != nil {
				return err
			}
			return tx.SendBatch(ctx, batch).Close()
		})
		cancel()
		switch {
		// A database that is away fails the whole group at once: alone,
		// each delivery would wait for it again.
		case err == nil || len(group) == 1 || errors.Is(err, store.ErrUnavailable):
			for _, op := range group {
				op.done <- err
			}
			return
		case failed < 0:
			// The failure is the group's (a lost connection, a failed
			// batch): each delivery alone.
			for _, op := range group {
				s.commitGroup([]*delivery{op})
			}
			return
		}
		s.commitGroup(group[failed : failed+1])
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}
