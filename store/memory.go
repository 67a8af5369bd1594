package store

import (
	"context"
	"encoding/binary"
	"fmt"
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
// folder's UIDVALIDITY and the highest remote UID passed (filed, or found
// filed before).
type RemoteState struct {
	UIDValidity uint32
	LastUID     uint32
}

// RemoteProgress returns the saved state of a connected account, keyed by
// the caller (account, host, user and folder).
func (s *Store) RemoteProgress(ctx context.Context, key string) (RemoteState, error) {
	var st RemoteState
	err := s.view(ctx, func(tx *bolt.Tx) error {
		// Records of 12 bytes were written by an earlier version, with a
		// third field since dropped.
		if v := tx.Bucket(bucketRemote).Get([]byte(key)); len(v) >= 8 {
			st.UIDValidity = binary.BigEndian.Uint32(v)
			st.LastUID = binary.BigEndian.Uint32(v[4:])
		}
		return nil
	})
	return st, err
}

// DeliverRemote files a message fetched from a connected account and
// advances its saved state in the same commit, so each remote message is
// filed exactly once across crashes and restarts. The same commit records
// the message's digest (the caller's hash of the bytes as fetched), which
// RemoteFiled answers: the caller recognises what it filed before by
// content, also when the remote folder was recreated.
//
// A target over quota refuses the whole delivery with ErrQuota: nothing is
// filed and the state does not advance, so the message is tried again.
func (s *Store) DeliverRemote(ctx context.Context, key string, st RemoteState, digest []byte, d *Delivery) (*DeliveryResult, error) {
	d.Queue = nil
	// Reuse Deliver's transaction by appending the progress write to it.
	return s.deliverWith(ctx, d, func(tx *bolt.Tx, res *DeliveryResult) error {
		for i, r := range res.Targets {
			if r.Err != nil {
				return fmt.Errorf("deliver to %s/%s: %w", d.Targets[i].Account, d.Targets[i].Folder, r.Err)
			}
		}
		if err := putRemoteState(tx, key, st); err != nil {
			return err
		}
		return tx.Bucket(bucketRemoteFiled).Put(remoteDigestKey(key, digest), []byte{1})
	})
}

// RemoteFiled reports whether DeliverRemote filed a message with this
// digest under key.
func (s *Store) RemoteFiled(ctx context.Context, key string, digest []byte) (bool, error) {
	var filed bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		filed = tx.Bucket(bucketRemoteFiled).Get(remoteDigestKey(key, digest)) != nil
		return nil
	})
	return filed, err
}

// SaveRemoteProgress saves a connected account's state without filing
// anything: the caller passed over remote messages it had filed before.
func (s *Store) SaveRemoteProgress(ctx context.Context, key string, st RemoteState) error {
	return s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		return putRemoteState(tx, key, st)
	})
}

func putRemoteState(tx *bolt.Tx, key string, st RemoteState) error {
	v := binary.BigEndian.AppendUint32(u32(st.UIDValidity), st.LastUID)
	return tx.Bucket(bucketRemote).Put([]byte(key), v)
}

// remoteDigestKey is key, a zero byte and the digest. Digests have one
// length, so two different keys never make the same record key.
func remoteDigestKey(key string, digest []byte) []byte {
	return append(append([]byte(key), 0), digest...)
}
