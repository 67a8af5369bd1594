package store

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many writes share one commit.
const maxBatch = 512

// writeOp is one caller's write, run inside a shared transaction. Its fn may
// run more than once (when another write in the same batch fails, the batch is
// retried without it), so fn must start from scratch each time: it reports
// through the changes it adds to w and through variables it overwrites.
type writeOp struct {
	fn    func(tx *bolt.Tx, w *txState) error
	state txState
	done  chan error
}

// txState collects what one write changed, for publication after commit.
type txState struct {
	changes []Change
	txid    uint64
}

func (w *txState) publish(c Change) {
	c.TxID = w.txid
	w.changes = append(w.changes, c)
}

// errRetryAlone marks the write that made a shared transaction fail.
var errRetryAlone = errors.New("store: retry write alone")

// update runs fn in a write transaction shared with other concurrent writes,
// and returns once the transaction is durably committed and its changes
// published.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx, w *txState) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	s.writes <- op
	s.closeMu.RUnlock()
	// Once queued, the write is carried out even if ctx ends: the caller
	// must not believe it failed when it may have been committed.
	return <-op.done
}

// commitLoop is the single writer. It takes every write waiting at the
// moment and commits them together, so concurrent deliveries share fsyncs
// without an artificial delay.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	for op := range s.writes {
		batch := []*writeOp{op}
	drain:
		for len(batch) < maxBatch {
			select {
			case next, ok := <-s.writes:
				if !ok {
					break drain
				}
				batch = append(batch, next)
			default:
				break drain
			}
		}
		s.commitBatch(batch)
	}
}

func (s *Store) commitBatch(batch []*writeOp) {
	for len(batch) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			txid := uint64(tx.ID())
			for i, op := range batch {
				op.state = txState{txid: txid}
				if err := op.fn(tx, &op.state); err != nil {
					failed = i
					return errRetryAlone
				}
			}
			return nil
		})
		if err == nil {
			s.finish(batch, nil)
			return
		}
		if failed < 0 {
			s.log.Error("store commit failed", "err", err, "writes", len(batch))
			s.finish(batch, fmt.Errorf("store commit: %w", err))
			return
		}
		// Run the failing write on its own so it gets its own error, then
		// retry the rest together.
		bad := batch[failed]
		var badErr error
		err = s.db.Update(func(tx *bolt.Tx) error {
			bad.state = txState{txid: uint64(tx.ID())}
			badErr = bad.fn(tx, &bad.state)
			return badErr
		})
		if badErr == nil && err != nil {
			badErr = fmt.Errorf("store commit: %w", err)
		}
		s.finish([]*writeOp{bad}, badErr)
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// finish publishes the changes of committed writes, in commit order, then
// releases their callers.
func (s *Store) finish(batch []*writeOp, err error) {
	if err == nil {
		s.subMu.RLock()
		for _, op := range batch {
			for _, c := range op.state.changes {
				for _, fn := range s.subs {
					fn(c)
				}
			}
		}
		s.subMu.RUnlock()
	}
	for _, op := range batch {
		op.done <- err
	}
}
