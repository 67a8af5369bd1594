package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"postkasse.dev/postkasse/internal/fileowner"
)

// Backup takes a consistent snapshot of the whole store (one read
// transaction) and hands write its size in bytes and the snapshot, which
// writes exactly that many bytes to any writer. Deliveries go on meanwhile;
// every write committed before Backup was called is in the snapshot. The
// snapshot is a store file of its own: Restore puts it in place.
func (s *Store) Backup(ctx context.Context, write func(size int64, snapshot io.WriterTo) error) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		return write(tx.Size(), tx)
	})
}

// Restore replaces the store at path with the backup at from, which it
// checks first (bbolt's checks and Verify): a damaged backup replaces
// nothing. The store must not be open: ErrInUse while a server runs. The
// store it replaces is kept beside it as path + ".old" until the next
// restore, in case the wrong backup was chosen.
func Restore(ctx context.Context, path, from string) error {
	lock, err := lockStore(path, time.Second)
	if err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	defer lock.Close()
	if err := VerifyFile(ctx, from, true); err != nil {
		return fmt.Errorf("restore: %s is not a sound store: %w", from, err)
	}
	tmp := path + ".restore"
	if err := copyFile(from, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if err := fileowner.Match(tmp, filepath.Dir(path)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(path, path+".old"); err != nil && !errors.Is(err, os.ErrNotExist) {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// copyFile copies src to a new file dst and fsyncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
