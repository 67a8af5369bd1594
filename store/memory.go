package store

import (
	"context"
	"encoding/binary"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// NoteAutoReply decides, durably, whether a mailbox may send an automatic
// reply to sender now: at most one per (mailbox, sender, text) within
// window. When it answers true the reply is recorded, so a second call —
// also after a restart — answers false until the window has passed.
func (s *Store) NoteAutoReply(ctx context.Context, accountID, sender, textKey string, now time.Time, window time.Duration) (bool, error) {
	key := []byte(accountID + "\x00" + strings.ToLower(sender) + "\x00" + textKey)
	var send bool
	err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		b := tx.Bucket(bucketReplies)
		if v := b.Get(key); len(v) == 8 {
			last := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			if now.Sub(last) < window {
				send = false
				return nil
			}
		}
		send = true
		return b.Put(key, u64(uint64(now.UnixNano())))
	})
	return send, err
}

// RemoteState is how far a connected account has been read: the remote
// folder's UIDVALIDITY and the highest remote UID filed locally.
type RemoteState struct {
	UIDValidity uint32
	LastUID     uint32
}

// RemoteProgress returns the saved state of a connected account, keyed by
// the caller (account, host, user and folder).
func (s *Store) RemoteProgress(ctx context.Context, key string) (RemoteState, error) {
	var st RemoteState
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketRemote).Get([]byte(key)); len(v) == 8 {
			st.UIDValidity = binary.BigEndian.Uint32(v)
			st.LastUID = binary.BigEndian.Uint32(v[4:])
		}
		return nil
	})
	return st, err
}

// DeliverRemote files a message fetched from a connected account and
// advances its saved state in the same commit, so each remote message is
// filed exactly once across crashes and restarts.
func (s *Store) DeliverRemote(ctx context.Context, key string, st RemoteState, d *Delivery) (*DeliveryResult, error) {
	d.Queue = nil
	val := binary.BigEndian.AppendUint32(u32(st.UIDValidity), st.LastUID)
	// Reuse Deliver's transaction by appending the progress write to it.
	return s.deliverWith(ctx, d, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRemote).Put([]byte(key), val)
	})
}
