package postgres

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// copyInto copies the given messages of src's folder into df under new
// UIDs, with the flags as src's viewer sees them, sharing their bodies.
func copyInto(ctx context.Context, tx pgx.Tx, src store.Access, folderID uint64, uids []UID, da *account, df *folder, quota int64, res *store.CopyResult, added *store.Change) error {
	want := uidArgs(uids)
	overrides, err := seenOverrides(ctx, tx, src, folderID, want)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT uid, flags, keywords, date_ns, size, hash, prefix, meta FROM messages
		WHERE account = $1 AND folder = $2 AND uid = ANY($3) ORDER BY uid`, src.Account, folderID, want)
	if err != nil {
		return err
	}
	type row struct {
		uid    int64
		fs     store.FlagSet
		dateNS int64
		size   int64
		hash   []byte
		prefix []byte
		meta   []byte
	}
	var msgs []row
	var r row
	_, err = pgx.ForEachRow(rows, []any{&r.uid, &r.fs.Bits, &r.fs.Keywords, &r.dateNS, &r.size, &r.hash, &r.prefix, &r.meta}, func() error {
		msgs = append(msgs, r)
		r = row{}
		return nil
	})
	if err != nil {
		return err
	}
	var total int64
	refs := make(map[string]int64)
	batch := &pgx.Batch{}
	for _, m := range msgs {
		fs := effective(src, overrides, UID(m.uid), m.fs)
		total += m.size
		if overQuota(da.usage, total, quota) {
			return store.ErrQuota
		}
		newUID := df.uidNext
		df.uidNext++
		df.messages++
		df.size += m.size
		if !fs.Seen() {
			df.unseen++
		}
		batch.Queue(`INSERT INTO messages (account, folder, uid, flags, keywords, date_ns, size, hash, prefix, meta)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			da.id, df.id, newUID, fs.Bits, keywordList(fs), m.dateNS, m.size, m.hash, m.prefix, m.meta)
		refs[string(m.hash)]++
		res.Source = append(res.Source, UID(m.uid))
		res.Dest = append(res.Dest, UID(newUID))
		added.Messages = append(added.Messages, store.ChangedMessage{UID: UID(newUID), Flags: fs.List()})
	}
	res.UIDValidity = uint32(df.uidValidity)
	if batch.Len() > 0 {
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
	}
	for _, c := range sortedCounts(refs) {
		if _, err := tx.Exec(ctx, `UPDATE blobs SET refs = refs + $2 WHERE hash = $1`, c.hash, c.n); err != nil {
			return err
		}
	}
	da.addUsage(total)
	return saveFolder(ctx, tx, da.id, df)
}

// sortedCounts lists reference counts by hash, in hash order: writes that
// lock several bodies lock them in one order.
func sortedCounts(refs map[string]int64) []hashCount {
	out := make([]hashCount, 0, len(refs))
	for h, n := range refs {
		out = append(out, hashCount{[]byte(h), n})
	}
	slices.SortFunc(out, func(a, b hashCount) int { return strings.Compare(string(a.hash), string(b.hash)) })
	return out
}

func sortUIDs(uids []UID) { slices.Sort(uids) }
