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
	queued bool // the record is on the write's own batch (queueRecord)
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

// recordChanges advances the change sequence of each of the write's folders
// (locking their rows until the commit, in the order the folders were first
// changed, so one folder's numbers commit in order), stores the changes
// under the new numbers and notifies every node, in one statement: a
// delivery to a thousand mailboxes records a thousand changes at once.
const recordChanges = `
WITH v AS (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS v(account, folder, data, n)
), s AS (
	INSERT INTO folder_seq AS f (account, folder, seq)
	SELECT account, folder, 1 FROM v ORDER BY n
	ON CONFLICT (account, folder) DO UPDATE SET seq = f.seq + 1
	RETURNING account, folder, seq
), c AS (
	INSERT INTO changes (account, folder, seq, token, data)
	SELECT s.account, s.folder, s.seq, $5, v.data::jsonb FROM s JOIN v ON v.account = s.account AND v.folder = s.folder
)
SELECT account, folder, seq, pg_notify($4, seq || ' ' || folder || ' ' || $5::bigint || ' ' || account) FROM s`

// record stores the write's changes and notifies every node, in the write's
// transaction, unless the write queued that on a batch of its own already
// (queueRecord); then it holds the changes for delivery after the commit.
// The changes' TxID is the folder's new sequence number.
func (w *txState) record(ctx context.Context, tx pgx.Tx, f *feed) error {
	if !w.queued && len(w.groups) > 0 {
		batch := &pgx.Batch{}
		if err := w.queueRecord(batch); err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
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

// queueRecord queues on batch the statement that records the changes
// published so far; a write that sends a batch anyway (a group of
// deliveries) saves a round trip so. Nothing may be published after it.
func (w *txState) queueRecord(batch *pgx.Batch) error {
	w.queued = true
	if len(w.groups) == 0 {
		return nil
	}
	accounts := make([]string, len(w.groups))
	folders := make([]int64, len(w.groups))
	data := make([]string, len(w.groups))
	at := make(map[folderKey]*changeGroup, len(w.groups))
	for i, g := range w.groups {
		var err error
		if data[i], err = encodeChanges(g.changes); err != nil {
			return err
		}
		accounts[i], folders[i] = g.key.account, int64(g.key.folder)
		at[g.key] = g
	}
	batch.Queue(recordChanges, accounts, folders, data, notifyChannel, int64(w.token)).Query(func(rows pgx.Rows) error {
		var k folderKey
		var seq uint64
		n, err := pgx.ForEachRow(rows, []any{&k.account, &k.folder, &seq, nil}, func() error {
			if g := at[k]; g != nil {
				g.seq = seq
			}
			return nil
		})
		if err == nil && n.RowsAffected() != int64(len(w.groups)) {
			err = fmt.Errorf("%d sequence numbers for %d folders", n.RowsAffected(), len(w.groups))
		}
		if err != nil {
			return fmt.Errorf("record change: %w", err)
		}
		return nil
	})
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
