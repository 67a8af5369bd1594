package store

import (
	"context"
	"os"
)

// Size reports the bytes the store takes: its database file's size. The
// file grows in steps and gives space back only when compacted, so this is
// what the disk holds, not what the messages need.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
