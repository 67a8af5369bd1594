package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// Bodies reads the text of each message of uids (ascending) that exists in
// one query, and then calls fn with each in UID order; the texts belong to
// the caller. A message not in the folder (expunged) is left out; a folder
// that does not exist is store.ErrNoFolder. As in the bbolt store, the
// caller bounds what one call holds by the messages' sizes.
func (s *Store) Bodies(ctx context.Context, acc store.Access, folderID uint64, uids []UID, fn func(uid UID, body []byte) error) error {
	type text struct {
		uid  UID
		body []byte
	}
	var texts []text
	err := s.read(ctx, func(tx pgx.Tx) error {
		if _, err := folderByID(ctx, tx, acc.Account, folderID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT m.uid, m.prefix, b.body, b.hash IS NOT NULL FROM messages m
			LEFT JOIN blobs b ON b.hash = m.hash
			WHERE m.account = $1 AND m.folder = $2 AND m.uid = ANY($3) ORDER BY m.uid`, acc.Account, folderID, uidArgs(uids))
		if err != nil {
			return err
		}
		var (
			uid          int64
			prefix, body []byte
			found        bool
		)
		_, err = pgx.ForEachRow(rows, []any{&uid, &prefix, &body, &found}, func() error {
			if !found {
				return fmt.Errorf("message %d: body missing", uid)
			}
			texts = append(texts, text{UID(uid), append(append(make([]byte, 0, len(prefix)+len(body)), prefix...), body...)})
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	for _, t := range texts {
		if err := fn(t.uid, t.body); err != nil {
			return err
		}
	}
	return nil
}
