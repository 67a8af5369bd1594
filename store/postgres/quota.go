package postgres

import (
	"context"
	"fmt"

	"postkasse.dev/postkasse/store"
)

// The quota rule is package store's (store/quota.go), applied here to the
// usage the database keeps for every node: a quota is bytes, 0 means
// unlimited; a message that would take an account over its quota is
// refused where the refusal can still reach someone (CheckRoom at RCPT,
// APPEND, COPY, connected accounts), an accepted recipient's message is
// filed anyway (Target.SoftQuota), and the first delivery past 90% warns.

// overQuota reports whether an account using usage bytes cannot take size
// more under quota.
func overQuota(usage, size, quota int64) bool {
	return quota > 0 && usage+size > quota
}

// pastWarning reports whether usage has reached the 90% warning line.
func pastWarning(usage, quota int64) bool {
	return quota > 0 && usage >= quota/10*9
}

// CheckRoom returns store.ErrQuota when the account cannot take size more
// bytes under quota, nil when it can.
func (s *Store) CheckRoom(ctx context.Context, accountID string, quota, size int64) error {
	if quota <= 0 {
		return nil
	}
	if accountID == "" {
		return fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	// One statement reads one snapshot: no transaction around it, which
	// would cost two more round trips at every RCPT.
	var usage int64
	err := s.statement(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT coalesce((SELECT usage FROM accounts WHERE id = $1), 0)`, accountID).Scan(&usage)
	})
	if err != nil {
		return err
	}
	if overQuota(usage, size, quota) {
		return store.ErrQuota
	}
	return nil
}
