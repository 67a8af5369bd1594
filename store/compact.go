package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"postkasse.dev/postkasse/internal/fileowner"
)

// compactTxSize bounds what one transaction of the copy holds in memory.
const compactTxSize = 64 << 20

// Compact rewrites the store file at path into a new file that holds only
// the live data, checks the copy, and puts it in the old file's place: the
// file shrinks after much mail was deleted (bbolt reuses freed pages but
// never gives them back to the file system). It returns the file's size
// before and after; when the copy is not smaller, the store is left as it
// was and both are the same.
//
// The store must not be open: Compact fails with ErrInUse while a server
// runs, and a server started meanwhile waits for the compaction to end. A
// failure leaves the store as it was.
func Compact(ctx context.Context, path string) (before, after int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	lock, err := lockStore(path, time.Second)
	if err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	defer lock.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	tmp := path + ".compact"
	if err := copyLive(path, tmp); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if cfi, err := os.Stat(tmp); err != nil || cfi.Size() >= fi.Size() {
		// Nothing to gain: a store with little free space comes out as
		// large as it went in (bbolt grows files in steps).
		os.Remove(tmp)
		return fi.Size(), fi.Size(), err
	}
	// The copy replaces the file of the service's user, whoever runs this.
	if err := fileowner.Match(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	// The rename is durable only once the directory is.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	nfi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	return fi.Size(), nfi.Size(), nil
}

// copyLive copies the live data of the database at src into a new database
// at dst and checks the copy; every transaction of the copy is fsynced.
func copyLive(src, dst string) error {
	from, err := bolt.Open(src, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return ErrInUse
	}
	if err != nil {
		return err
	}
	defer from.Close()
	os.Remove(dst)
	to, err := bolt.Open(dst, 0o600, boltOptions(time.Second))
	if err != nil {
		return err
	}
	if err := bolt.Compact(to, from, compactTxSize); err != nil {
		to.Close()
		return fmt.Errorf("copy: %w", err)
	}
	err = to.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("check of the copy: %w", err)
		}
		return nil
	})
	if cerr := to.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
