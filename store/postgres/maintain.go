package postgres

import (
	"context"
	"time"
)

// maintain renews this node's queue claims every third of a lease and
// prunes old change records every pruneEvery, until ctx ends.
func (s *Store) maintain(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.renewClaims(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("renewing queue claims", "err", err)
		}
		if time.Since(pruned) < pruneEvery {
			continue
		}
		if err := s.pruneChanges(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning change records", "err", err)
			continue
		}
		pruned = time.Now()
	}
}

// pruneEvery is how often a node prunes change records; every node does,
// and deleting what another node deleted already costs nothing.
const pruneEvery = 10 * time.Minute

// pruneChanges deletes change records older than the retention. A listener
// away for longer than that misses changes, and says so in the log (see
// feed.deliverAll); folder_seq stays, so sequence numbers never repeat.
func (s *Store) pruneChanges(ctx context.Context) error {
	return s.statement(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `DELETE FROM changes WHERE created < now() - $1 * interval '1 millisecond'`,
			s.keep.Milliseconds())
		return err
	})
}
