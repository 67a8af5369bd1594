package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// account is an account's row, locked by the current write.
type account struct {
	id     string
	usage  int64
	warned bool
	dirty  bool
}

func (a *account) addUsage(delta int64) {
	a.usage = max(a.usage+delta, 0)
	a.dirty = true
}

// lockAccounts locks the rows of the given accounts in id order (creating
// them first with create), which serialises writes per account and keeps
// writes that touch several accounts from deadlocking. Without create, a
// missing account is absent from the result.
func lockAccounts(ctx context.Context, tx pgx.Tx, create bool, ids ...string) (map[string]*account, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("%w: empty account id", store.ErrInvalid)
		}
	}
	out, err := selectAccounts(ctx, tx, ids)
	if err != nil || !create || len(out) == len(ids) {
		return out, err
	}
	// Some are new: create them, then lock the whole set again.
	_, err = tx.Exec(ctx, `INSERT INTO accounts (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, ids)
	if err != nil {
		return nil, fmt.Errorf("create accounts: %w", err)
	}
	return selectAccounts(ctx, tx, ids)
}

func selectAccounts(ctx context.Context, tx pgx.Tx, ids []string) (map[string]*account, error) {
	rows, err := tx.Query(ctx, `SELECT id, usage, warned FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*account, len(ids))
	var a account
	_, err = pgx.ForEachRow(rows, []any{&a.id, &a.usage, &a.warned}, func() error {
		acc := a
		out[a.id] = &acc
		return nil
	})
	return out, err
}

// queueAccounts queues on batch the writes saveAccounts would make, as one
// statement (a delivery to a thousand mailboxes changes a thousand).
func queueAccounts(batch *pgx.Batch, accounts map[string]*account) {
	var ids []string
	var usage []int64
	var warned []bool
	for _, a := range accounts {
		if a.dirty {
			ids, usage, warned = append(ids, a.id), append(usage, a.usage), append(warned, a.warned)
		}
	}
	if len(ids) == 0 {
		return
	}
	batch.Queue(`UPDATE accounts a SET usage = v.usage, warned = v.warned
		FROM unnest($1::text[], $2::bigint[], $3::boolean[]) AS v(id, usage, warned) WHERE a.id = v.id`,
		ids, usage, warned)
}

// saveAccounts writes back the accounts whose usage or warning changed.
func saveAccounts(ctx context.Context, tx pgx.Tx, accounts map[string]*account) error {
	for _, a := range accounts {
		if !a.dirty {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET usage = $2, warned = $3 WHERE id = $1`, a.id, a.usage, a.warned); err != nil {
			return err
		}
	}
	return nil
}

// folder is a folder's row.
type folder struct {
	id          uint64
	name        string
	specialUse  string
	uidValidity int64
	uidNext     int64
	messages    int64
	unseen      int64 // shared \Seen
	size        int64
	recentFrom  int64 // the first UID no session has claimed as \Recent
}

const folderColumns = `id, name, special_use, uid_validity, uid_next, messages, unseen, size, recent_from`

func scanFolder(row pgx.Row) (folder, error) {
	var f folder
	err := row.Scan(&f.id, &f.name, &f.specialUse, &f.uidValidity, &f.uidNext, &f.messages, &f.unseen, &f.size, &f.recentFrom)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, store.ErrNoFolder
	}
	return f, err
}

func (f *folder) info() store.FolderInfo {
	return store.FolderInfo{
		ID: f.id, Name: f.name, SpecialUse: f.specialUse, UIDValidity: uint32(f.uidValidity),
		UIDNext: UID(f.uidNext), Messages: uint32(f.messages), Unseen: uint32(f.unseen), Size: f.size,
		RecentFrom: UID(f.recentFrom),
	}
}

// querier is a transaction or a pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func folderByName(ctx context.Context, q querier, accountID, name string) (folder, error) {
	return scanFolder(q.QueryRow(ctx, `SELECT `+folderColumns+` FROM folders WHERE account = $1 AND name = $2`, accountID, name))
}

func folderByID(ctx context.Context, q querier, accountID string, id uint64) (folder, error) {
	return scanFolder(q.QueryRow(ctx, `SELECT `+folderColumns+` FROM folders WHERE account = $1 AND id = $2`, accountID, id))
}

// saveFolder writes back a folder's counters. Writers of these hold the
// account's lock; recent_from is not among them, as Select claims \Recent
// without that lock.
func saveFolder(ctx context.Context, tx pgx.Tx, accountID string, f *folder) error {
	_, err := tx.Exec(ctx, `UPDATE folders SET uid_next = $3, messages = $4, unseen = $5, size = $6
		WHERE account = $1 AND id = $2`, accountID, f.id, f.uidNext, f.messages, f.unseen, f.size)
	return err
}

// createFolder makes a folder in an account the caller has locked.
func createFolder(ctx context.Context, tx pgx.Tx, accountID string, spec store.FolderSpec) (folder, error) {
	if spec.Name == "" {
		return folder{}, fmt.Errorf("%w: empty folder name", store.ErrInvalid)
	}
	if _, err := folderByName(ctx, tx, accountID, spec.Name); err == nil {
		return folder{}, store.ErrFolderExists
	} else if !errors.Is(err, store.ErrNoFolder) {
		return folder{}, err
	}
	f := folder{name: spec.Name, specialUse: spec.SpecialUse, uidNext: 1, recentFrom: 1}
	err := tx.QueryRow(ctx, `UPDATE accounts SET next_folder = next_folder + 1 WHERE id = $1 RETURNING next_folder - 1`,
		accountID).Scan(&f.id)
	if err != nil {
		return folder{}, fmt.Errorf("create folder %q: %w", spec.Name, err)
	}
	// UIDVALIDITY values never repeat in this database, and start from the
	// clock so a recreated database does not reuse old ones.
	err = tx.QueryRow(ctx, `UPDATE meta SET value = greatest(value + 1, $1) WHERE key = 'uidvalidity' RETURNING value`,
		time.Now().Unix()).Scan(&f.uidValidity)
	if err != nil {
		return folder{}, fmt.Errorf("create folder %q: %w", spec.Name, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO folders (account, id, name, special_use, uid_validity) VALUES ($1, $2, $3, $4, $5)`,
		accountID, f.id, f.name, f.specialUse, f.uidValidity)
	if err != nil {
		return folder{}, fmt.Errorf("create folder %q: %w", spec.Name, err)
	}
	return f, nil
}
