package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// EnsureFolders creates those of the given folders the account lacks
// (creating the account too). It returns the names it created.
func (s *Store) EnsureFolders(ctx context.Context, accountID string, specs []store.FolderSpec) ([]string, error) {
	// Most calls find everything present: check without writing first.
	missing, err := s.missingFolders(ctx, accountID, specs)
	if err != nil || !missing {
		return nil, err
	}
	var created []string
	err = s.write(ctx, func(tx pgx.Tx, w *txState) error {
		created = created[:0]
		if _, err := lockAccounts(ctx, tx, true, accountID); err != nil {
			return err
		}
		for _, spec := range specs {
			if _, err := folderByName(ctx, tx, accountID, spec.Name); err == nil {
				continue
			}
			f, err := createFolder(ctx, tx, accountID, spec)
			if err != nil {
				return fmt.Errorf("create folder %q: %w", spec.Name, err)
			}
			created = append(created, spec.Name)
			w.publish(store.Change{Kind: store.ChangeFolders, Account: accountID, FolderID: f.id, Folder: spec.Name})
		}
		return nil
	})
	return created, err
}

func (s *Store) missingFolders(ctx context.Context, accountID string, specs []store.FolderSpec) (bool, error) {
	if accountID == "" {
		return false, fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	names := make([]string, len(specs))
	for i, spec := range specs {
		names[i] = spec.Name
	}
	var found, account int
	err := s.read(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT
			(SELECT count(DISTINCT name) FROM folders WHERE account = $1 AND name = ANY($2)),
			(SELECT count(*) FROM accounts WHERE id = $1)`, accountID, names).Scan(&found, &account)
	})
	if err != nil {
		return false, err
	}
	distinct := make(map[string]bool)
	for _, n := range names {
		distinct[n] = true
	}
	return account == 0 || found < len(distinct), nil
}

// Folders lists an account's folders, sorted by name. A missing account has
// none.
func (s *Store) Folders(ctx context.Context, accountID string) ([]store.FolderInfo, error) {
	if accountID == "" {
		return nil, fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	var out []store.FolderInfo
	err := s.read(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `SELECT `+folderColumns+` FROM folders WHERE account = $1 ORDER BY name`, accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			f, err := scanFolder(rows)
			if err != nil {
				return err
			}
			out = append(out, f.info())
		}
		return rows.Err()
	})
	return out, err
}

// Folder describes one folder.
func (s *Store) Folder(ctx context.Context, accountID, name string) (store.FolderInfo, error) {
	if accountID == "" {
		return store.FolderInfo{}, fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	var f folder
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		f, err = folderByName(ctx, tx, accountID, name)
		return err
	})
	return f.info(), err
}

// CreateFolder creates a folder.
func (s *Store) CreateFolder(ctx context.Context, accountID string, spec store.FolderSpec) error {
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		if _, err := lockAccounts(ctx, tx, true, accountID); err != nil {
			return err
		}
		f, err := createFolder(ctx, tx, accountID, spec)
		if err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeFolders, Account: accountID, FolderID: f.id, Folder: spec.Name})
		return nil
	})
}

// DeleteFolder deletes a folder and every message in it.
func (s *Store) DeleteFolder(ctx context.Context, accountID, name string) error {
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		accounts, err := lockAccounts(ctx, tx, false, accountID)
		if err != nil {
			return err
		}
		a := accounts[accountID]
		if a == nil {
			return store.ErrNoFolder
		}
		f, err := folderByName(ctx, tx, accountID, name)
		if err != nil {
			return err
		}
		if err := unrefFolder(ctx, tx, accountID, f.id); err != nil {
			return fmt.Errorf("delete folder %q: %w", name, err)
		}
		for _, q := range []string{
			`DELETE FROM seen WHERE account = $1 AND folder = $2`,
			`DELETE FROM messages WHERE account = $1 AND folder = $2`,
			`DELETE FROM folders WHERE account = $1 AND id = $2`,
		} {
			if _, err := tx.Exec(ctx, q, accountID, f.id); err != nil {
				return fmt.Errorf("delete folder %q: %w", name, err)
			}
		}
		a.addUsage(-f.size)
		if err := saveAccounts(ctx, tx, accounts); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeFolders, Account: accountID, FolderID: f.id})
		return nil
	})
}

// unrefFolder drops the references a folder's messages hold on bodies.
func unrefFolder(ctx context.Context, tx pgx.Tx, accountID string, id uint64) error {
	rows, err := tx.Query(ctx, `SELECT hash, count(*) FROM messages WHERE account = $1 AND folder = $2 GROUP BY hash ORDER BY hash`, accountID, id)
	if err != nil {
		return err
	}
	counts, err := collectCounts(rows)
	if err != nil {
		return err
	}
	return unrefBlobs(ctx, tx, counts)
}

type hashCount struct {
	hash []byte
	n    int64
}

func collectCounts(rows pgx.Rows) ([]hashCount, error) {
	var out []hashCount
	var hc hashCount
	_, err := pgx.ForEachRow(rows, []any{&hc.hash, &hc.n}, func() error {
		out = append(out, hashCount{append([]byte(nil), hc.hash...), hc.n})
		return nil
	})
	return out, err
}

// unrefBlobs drops references to bodies, deleting each body with its last
// reference.
func unrefBlobs(ctx context.Context, tx pgx.Tx, counts []hashCount) error {
	for _, c := range counts {
		var left int64
		err := tx.QueryRow(ctx, `UPDATE blobs SET refs = refs - $2 WHERE hash = $1 RETURNING refs`, c.hash, c.n).Scan(&left)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("body %x: missing", c.hash[:6])
		}
		if err != nil {
			return err
		}
		if left <= 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM blobs WHERE hash = $1`, c.hash); err != nil {
				return err
			}
		}
	}
	return nil
}

// RenameFolder renames a folder and every folder below it (names starting
// with oldName + delim). UIDVALIDITY and messages stay.
func (s *Store) RenameFolder(ctx context.Context, accountID, oldName, newName string, delim string) error {
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		accounts, err := lockAccounts(ctx, tx, false, accountID)
		if err != nil {
			return err
		}
		if accounts[accountID] == nil {
			return store.ErrNoFolder
		}
		if _, err := folderByName(ctx, tx, accountID, oldName); err != nil {
			return err
		}
		if newName == "" {
			return fmt.Errorf("%w: empty folder name", store.ErrInvalid)
		}
		if _, err := folderByName(ctx, tx, accountID, newName); err == nil {
			return store.ErrFolderExists
		}
		moves, err := renames(ctx, tx, accountID, oldName, newName, delim)
		if err != nil {
			return err
		}
		for _, m := range moves {
			if _, err := folderByName(ctx, tx, accountID, m.to); err == nil {
				return fmt.Errorf("rename %q: %w", m.to, store.ErrFolderExists)
			}
		}
		for _, m := range moves {
			if _, err := tx.Exec(ctx, `UPDATE folders SET name = $3 WHERE account = $1 AND id = $2`, accountID, m.id, m.to); err != nil {
				return err
			}
			w.publish(store.Change{Kind: store.ChangeFolders, Account: accountID, FolderID: m.id, Folder: m.to})
		}
		return nil
	})
}

type rename struct {
	from, to string
	id       uint64
}

// renames lists the folders a rename moves, in name order.
func renames(ctx context.Context, tx pgx.Tx, accountID, oldName, newName, delim string) ([]rename, error) {
	rows, err := tx.Query(ctx, `SELECT id, name FROM folders WHERE account = $1 ORDER BY name`, accountID)
	if err != nil {
		return nil, err
	}
	var moves []rename
	var id uint64
	var name string
	_, err = pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		if name == oldName {
			moves = append(moves, rename{name, newName, id})
		} else if delim != "" && strings.HasPrefix(name, oldName+delim) {
			moves = append(moves, rename{name, newName + name[len(oldName):], id})
		}
		return nil
	})
	return moves, err
}

// Usage returns the bytes an account's messages take.
func (s *Store) Usage(ctx context.Context, accountID string) (int64, error) {
	if accountID == "" {
		return 0, fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	var u int64
	err := s.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT usage FROM accounts WHERE id = $1`, accountID).Scan(&u)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return u, err
}

// SetSubscribed records whether viewer subscribes to a folder of an account.
// Both states are kept, so "unsubscribed" can differ from "never decided".
func (s *Store) SetSubscribed(ctx context.Context, viewer, accountID, folderName string, on bool) error {
	return s.write(ctx, func(tx pgx.Tx, w *txState) error {
		_, err := tx.Exec(ctx, `INSERT INTO subscriptions (viewer, account, folder, subscribed) VALUES ($1, $2, $3, $4)
			ON CONFLICT (viewer, account, folder) DO UPDATE SET subscribed = excluded.subscribed`,
			viewer, accountID, folderName, on)
		return err
	})
}

// Subscriptions returns viewer's explicit subscription decisions for an
// account's folders: folder name -> subscribed.
func (s *Store) Subscriptions(ctx context.Context, viewer, accountID string) (map[string]bool, error) {
	out := make(map[string]bool)
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT folder, subscribed FROM subscriptions WHERE viewer = $1 AND account = $2`, viewer, accountID)
		if err != nil {
			return err
		}
		var name string
		var on bool
		_, err = pgx.ForEachRow(rows, []any{&name, &on}, func() error {
			out[name] = on
			return nil
		})
		return err
	})
	return out, err
}
