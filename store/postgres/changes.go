package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// txState collects what one write changed, grouped by folder in the order
// the folders were first changed. token tells this attempt of the write
// from every other, on every node (see held).
type txState struct {
	token  uint64
	groups []*changeGroup
}

// newTxState starts a write's attempt with a fresh random token: 63 bits,
// never 0, to fit a bigint.
func newTxState() *txState {
	var b [8]byte
	rand.Read(b[:])
	return &txState{token: binary.BigEndian.Uint64(b[:])>>1 | 1}
}

type changeGroup struct {
	key     folderKey
	seq     uint64
	changes []store.Change
}

func (w *txState) publish(c store.Change) {
	k := folderKey{c.Account, c.FolderID}
	for _, g := range w.groups {
		if g.key == k {
			g.changes = append(g.changes, c)
			return
		}
	}
	w.groups = append(w.groups, &changeGroup{key: k, changes: []store.Change{c}})
}

// recordChange advances a folder's change sequence (locking its row until
// the commit, so one folder's numbers commit in order), stores the changes
// under the new number and notifies every node, in one statement.
const recordChange = `
WITH s AS (
	INSERT INTO folder_seq AS f (account, folder, seq) VALUES ($1, $2, 1)
	ON CONFLICT (account, folder) DO UPDATE SET seq = f.seq + 1
	RETURNING seq
), c AS (
	INSERT INTO changes (account, folder, seq, token, data) SELECT $1, $2, s.seq, $5, $3::jsonb FROM s
)
SELECT s.seq, pg_notify($4, s.seq || ' ' || $2::bigint || ' ' || $5::bigint || ' ' || $1::text) FROM s`

// record stores the write's changes and notifies every node, in the write's
// transaction; then it holds the changes for delivery after the commit.
// The changes' TxID is the folder's new sequence number.
// The folders' statements go in one batch, one round trip for a delivery
// to a thousand mailboxes; they run in the order the folders were first
// changed, as one by one.
func (w *txState) record(ctx context.Context, tx pgx.Tx, f *feed) error {
	if len(w.groups) > 0 {
		batch := &pgx.Batch{}
		for _, g := range w.groups {
			data, err := encodeChanges(g.changes)
			if err != nil {
				return err
			}
			batch.Queue(recordChange, g.key.account, g.key.folder, data, notifyChannel, int64(w.token)).
				QueryRow(func(row pgx.Row) error { return row.Scan(&g.seq, nil) })
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("record change: %w", err)
		}
	}
	for _, g := range w.groups {
		for i := range g.changes {
			g.changes[i].TxID = g.seq
		}
	}
	f.hold(w)
	return nil
}

// wireChange is a store.Change as the changes table keeps it: the account
// and folder are the row's, TxID its sequence number; Origin belongs to the
// node that made the change and is not kept.
type wireChange struct {
	Kind     store.ChangeKind
	Folder   string                 `json:",omitempty"`
	Messages []store.ChangedMessage `json:",omitempty"`
	UIDs     []UID                  `json:",omitempty"`
	Viewer   string                 `json:",omitempty"`
	Seen     bool                   `json:",omitempty"`
}

func encodeChanges(cs []store.Change) (string, error) {
	wire := make([]wireChange, len(cs))
	for i, c := range cs {
		wire[i] = wireChange{Kind: c.Kind, Folder: c.Folder, Messages: c.Messages, UIDs: c.UIDs, Viewer: c.Viewer, Seen: c.Seen}
	}
	data, err := json.Marshal(wire)
	return string(data), err
}

func decodeChanges(data []byte, k folderKey, seq uint64) ([]store.Change, error) {
	var wire []wireChange
	if err := json.Unmarshal(data, &wire); err != nil {
		return nil, err
	}
	cs := make([]store.Change, len(wire))
	for i, wc := range wire {
		cs[i] = store.Change{
			TxID: seq, Kind: wc.Kind, Account: k.account, FolderID: k.folder, Folder: wc.Folder,
			Messages: wc.Messages, UIDs: wc.UIDs, Viewer: wc.Viewer, Seen: wc.Seen,
		}
	}
	return cs, nil
}
