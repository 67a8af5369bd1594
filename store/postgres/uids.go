package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// A group of deliveries takes the UIDs of all its messages in one
// statement: one UPDATE of every folder it files into, advancing each
// folder's counters by all its new messages at once, instead of one round
// trip per message while the accounts' rows are locked. The UIDs of one
// folder are consecutive, in the group's order. As with one UPDATE per
// message, the folder rows stay locked until the commit, so the UIDs from
// all nodes are distinct and increase in commit order.

// folderName names a folder by its account and name, as targets do.
type folderName struct{ account, name string }

// uidPlan is what a group files into each folder.
type uidPlan struct {
	folders map[folderName]*plannedFolder
	order   []folderName // as first booked, so the statement is stable
}

// plannedFolder counts a folder's new messages and, once taken, holds the
// first of their UIDs.
type plannedFolder struct {
	n, size, unseen int64
	create          bool             // a target may create the folder
	spec            store.FolderSpec // how, when it does

	found    bool // the folder exists; the fields below are set
	id       uint64
	validity int64
	next     int64 // the next UID to hand out
}

func newUIDPlan() *uidPlan { return &uidPlan{folders: make(map[folderName]*plannedFolder)} }

// book counts m as a new message of t's folder.
func (p *uidPlan) book(t store.Target, m *newMessage) {
	k := folderName{t.Account, t.Folder}
	f := p.folders[k]
	if f == nil {
		f = &plannedFolder{}
		p.folders[k] = f
		p.order = append(p.order, k)
	}
	f.n++
	f.size += m.size
	if !m.flags.Seen() {
		f.unseen++
	}
	if !t.NoCreate && !f.create {
		f.create, f.spec = true, store.FolderSpec{Name: t.Folder, SpecialUse: t.SpecialUse}
	}
}

// take advances the counters of every booked folder, creating the missing
// ones a target may create. A folder still missing afterwards is left
// !found: its targets fail when filed.
func (p *uidPlan) take(ctx context.Context, tx pgx.Tx) error {
	if len(p.order) == 0 {
		return nil
	}
	if err := p.advance(ctx, tx, p.order); err != nil {
		return err
	}
	var created []folderName
	for _, k := range p.order {
		if f := p.folders[k]; !f.found && f.create {
			if _, err := createFolder(ctx, tx, k.account, f.spec); err != nil {
				return fmt.Errorf("deliver to %s/%s: %w", k.account, k.name, err)
			}
			created = append(created, k)
		}
	}
	if len(created) == 0 {
		return nil
	}
	return p.advance(ctx, tx, created)
}

// advance runs the UPDATE for the folders keys and records what it found.
func (p *uidPlan) advance(ctx context.Context, tx pgx.Tx, keys []folderName) error {
	var accounts, names []string
	var ns, sizes, unseen []int64
	for _, k := range keys {
		f := p.folders[k]
		accounts, names = append(accounts, k.account), append(names, k.name)
		ns, sizes, unseen = append(ns, f.n), append(sizes, f.size), append(unseen, f.unseen)
	}
	rows, err := tx.Query(ctx, `UPDATE folders f SET uid_next = f.uid_next + v.n, messages = f.messages + v.n,
			size = f.size + v.size, unseen = f.unseen + v.unseen
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS v(account, name, n, size, unseen)
		WHERE f.account = v.account AND f.name = v.name
		RETURNING f.account, f.name, f.id, f.uid_validity, f.uid_next - v.n`,
		accounts, names, ns, sizes, unseen)
	if err != nil {
		return fmt.Errorf("take UIDs: %w", err)
	}
	var (
		k        folderName
		id       uint64
		validity int64
		first    int64
	)
	_, err = pgx.ForEachRow(rows, []any{&k.account, &k.name, &id, &validity, &first}, func() error {
		f := p.folders[k]
		if f == nil {
			return errors.New("take UIDs: the database returned a folder not asked for")
		}
		f.found, f.id, f.validity, f.next = true, id, validity, first
		return nil
	})
	if err != nil {
		return fmt.Errorf("take UIDs: %w", err)
	}
	return nil
}
