//go:build !unix

package store

import (
	"fmt"
	"os"
	"time"
)

// lockFile opens the lock file without locking it: on systems without
// flock, bbolt's own lock on the database is all there is, and Compact must
// only run while no server does.
func lockFile(path string, _ time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return f, nil
}
