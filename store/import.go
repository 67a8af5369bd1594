package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// errImported aborts the commit of a message imported before.
var errImported = errors.New("store: imported before")

// Import files a message brought in from other mail software into one
// folder of an account, unless a message with the same digest was imported
// into the account before: then it files nothing and answers false. The
// digest is the caller's (of the folder and the message), so a second run
// of the same import files nothing twice. A full account gives ErrQuota.
func (s *Store) Import(ctx context.Context, t Target, digest []byte, body []byte, date time.Time) (bool, error) {
	key := append([]byte(t.Account+"\x00"), digest...)
	seen := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		seen = tx.Bucket(bucketImported).Get(key) != nil
		return nil
	})
	if err != nil || seen {
		return false, err
	}
	_, err = s.deliverWith(ctx, &Delivery{Body: body, Date: date, Targets: []Target{t}}, func(tx *bolt.Tx, res *DeliveryResult) error {
		if err := res.Targets[0].Err; err != nil {
			return err
		}
		// A concurrent run of the same import may have filed it meanwhile.
		if tx.Bucket(bucketImported).Get(key) != nil {
			return errImported
		}
		return tx.Bucket(bucketImported).Put(key, []byte{1})
	})
	switch {
	case errors.Is(err, errImported):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("import into %s/%s: %w", t.Account, t.Folder, err)
	}
	return true, nil
}
