package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// The quota rule, in one place. A quota is bytes; 0 means unlimited.
//
//   - A message that would take an account over its quota is refused with
//     ErrQuota where the refusal can still reach someone: at RCPT (CheckRoom),
//     at APPEND and COPY, and for mail pulled from a connected account.
//   - A message whose recipient was accepted is filed even if it takes the
//     account over (Target.SoftQuota): an accepted message is never lost.
//   - The first delivery that takes an account past 90% of its quota sets
//     TargetResult.QuotaWarning (once, until usage drops below again).

// overQuota reports whether an account using usage bytes cannot take size
// more under quota.
func overQuota(usage, size, quota int64) bool {
	return quota > 0 && usage+size > quota
}

// pastWarning reports whether usage has reached the 90% warning line.
func pastWarning(usage, quota int64) bool {
	return quota > 0 && usage >= quota/10*9
}

// CheckRoom returns ErrQuota when the account cannot take size more bytes
// under quota, nil when it can.
func (s *Store) CheckRoom(ctx context.Context, accountID string, quota, size int64) error {
	if quota <= 0 {
		return nil
	}
	var usage int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		a, err := getAccount(tx, accountID, false)
		if a != nil {
			usage = a.usage()
		}
		return err
	})
	if err != nil {
		return err
	}
	if overQuota(usage, size, quota) {
		return ErrQuota
	}
	return nil
}
