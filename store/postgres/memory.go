package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// NoteAutoReply decides, durably, whether a mailbox may send an automatic
// reply to sender now: at most one per (mailbox, sender, text) within
// window. When it answers true the reply is recorded, so a second call —
// also on another node — answers false until the window has passed. The
// decision is one statement: of two nodes asking at once, one wins.
func (s *Store) NoteAutoReply(ctx context.Context, accountID, sender, textKey string, now time.Time, window time.Duration) (bool, error) {
	key := []byte(accountID + "\x00" + strings.ToLower(sender) + "\x00" + textKey)
	var send bool
	err := s.write(ctx, func(tx pgx.Tx, w *txState) error {
		tag, err := tx.Exec(ctx, `INSERT INTO autoreplies (key, last_ns) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET last_ns = excluded.last_ns
			WHERE autoreplies.last_ns <= $3`,
			key, now.UnixNano(), now.Add(-window).UnixNano())
		send = err == nil && tag.RowsAffected() == 1
		return err
	})
	return send, err
}

// RemoteProgress returns the saved state of a connected account, keyed by
// the caller (account, host, user and folder).
func (s *Store) RemoteProgress(ctx context.Context, key string) (store.RemoteState, error) {
	var st store.RemoteState
	err := s.read(ctx, func(tx pgx.Tx) error {
		var v, last int64
		err := tx.QueryRow(ctx, `SELECT uid_validity, last_uid FROM remote WHERE key = $1`, []byte(key)).Scan(&v, &last)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		st = store.RemoteState{UIDValidity: uint32(v), LastUID: uint32(last)}
		return err
	})
	return st, err
}

// DeliverRemote files a message fetched from a connected account and
// advances its saved state in the same commit, so each remote message is
// filed exactly once across crashes, restarts and nodes. The same commit
// records the message's digest, which RemoteFiled answers.
//
// A target over quota refuses the whole delivery with ErrQuota: nothing is
// filed and the state does not advance, so the message is tried again.
func (s *Store) DeliverRemote(ctx context.Context, key string, st store.RemoteState, digest []byte, d *store.Delivery) (*store.DeliveryResult, error) {
	d.Queue = nil
	return s.deliverWith(ctx, d, func(tx pgx.Tx, res *store.DeliveryResult) error {
		for i, r := range res.Targets {
			if r.Err != nil {
				return fmt.Errorf("deliver to %s/%s: %w", d.Targets[i].Account, d.Targets[i].Folder, r.Err)
			}
		}
		if err := putRemoteState(ctx, tx, key, st); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO remote_filed (key, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING`, []byte(key), digest)
		return err
	})
}

// RemoteFiled reports whether DeliverRemote filed a message with this
// digest under key.
func (s *Store) RemoteFiled(ctx context.Context, key string, digest []byte) (bool, error) {
	var filed bool
	err := s.read(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM remote_filed WHERE key = $1 AND digest = $2)`, []byte(key), digest).Scan(&filed)
	})
	return filed, err
}

// SaveRemoteProgress saves a connected account's state without filing
// anything: the caller passed over remote messages it had filed before.
func (s *Store) SaveRemoteProgress(ctx context.Context, key string, st store.RemoteState) error {
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		return putRemoteState(ctx, tx, key, st)
	})
}

func putRemoteState(ctx context.Context, tx pgx.Tx, key string, st store.RemoteState) error {
	_, err := tx.Exec(ctx, `INSERT INTO remote (key, uid_validity, last_uid) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid`,
		[]byte(key), int64(st.UIDValidity), int64(st.LastUID))
	return err
}
