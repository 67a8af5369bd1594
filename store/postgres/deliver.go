package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// newMessage is a message about to be filed.
type newMessage struct {
	flags  flagSet
	date   time.Time
	size   int64 // len(prefix) + len(body)
	hash   []byte
	prefix []byte
	meta   []byte
}

// Deliver stores a message in every target folder (the body once, however
// many targets) and queues its outbound copies, in one durable commit. A
// target over quota is refused alone (its TargetResult.Err); an error return
// means nothing was stored.
func (s *Store) Deliver(ctx context.Context, d *store.Delivery) (*store.DeliveryResult, error) {
	return s.deliverWith(ctx, d, nil)
}

// delivery is one Deliver on its way into a shared transaction.
type delivery struct {
	d    *store.Delivery
	also func(tx pgx.Tx, res *store.DeliveryResult) error
	date time.Time
	sum  [32]byte
	meta []byte
	// search is Options.SearchData's result, kept with the body.
	search []byte
	res    store.DeliveryResult
	done   chan error
}

// deliverWith is Deliver with one more write in the same transaction; also
// sees the results of the targets and may refuse the whole commit. The
// hashing and analysis happen here, outside any transaction; the writes in
// a transaction shared with other deliveries (see group.go).
func (s *Store) deliverWith(ctx context.Context, d *store.Delivery, also func(tx pgx.Tx, res *store.DeliveryResult) error) (*store.DeliveryResult, error) {
	op := &delivery{d: d, also: also, date: d.Date, sum: sha256.Sum256(d.Body), done: make(chan error, 1)}
	if op.date.IsZero() {
		op.date = time.Now()
	}
	if s.analyze != nil && len(d.Targets) > 0 {
		op.meta = s.analyze(d.Body)
	}
	if s.search != nil && len(d.Targets) > 0 {
		op.search = nonNil(s.search(d.Body)) // NULL means none
	}
	if err := s.submit(ctx, op); err != nil {
		return nil, err
	}
	return &op.res, nil
}

// file carries out one delivery in tx: it takes the UIDs, queues the rows
// on batch, counts the references to the body in bodies, and queues its
// outbound copies. The accounts of its targets are locked already.
func (op *delivery) file(ctx context.Context, tx pgx.Tx, w *txState, accounts map[string]*account, batch *pgx.Batch, bodies newBodies) error {
	d := op.d
	op.res = store.DeliveryResult{Targets: make([]store.TargetResult, len(d.Targets))}
	// One change per folder, listing its new messages, as bbolt has it.
	changes := make(map[folderKey]*store.Change)
	var order []folderKey
	for i, t := range d.Targets {
		m := newMessage{flags: parseFlags(t.Flags), date: op.date, size: int64(len(t.Prefix) + len(d.Body)),
			hash: op.sum[:], prefix: t.Prefix, meta: op.meta}
		r, id, err := fileMessage(ctx, tx, batch, accounts[t.Account], t, &m)
		if err != nil {
			return fmt.Errorf("deliver to %s/%s: %w", t.Account, t.Folder, err)
		}
		op.res.Targets[i] = r
		if r.Err != nil {
			continue
		}
		k := folderKey{t.Account, id}
		c := changes[k]
		if c == nil {
			c = &store.Change{Kind: store.ChangeNew, Account: t.Account, FolderID: id, Folder: t.Folder, Origin: t.Origin}
			changes[k] = c
			order = append(order, k)
		}
		c.Messages = append(c.Messages, store.ChangedMessage{UID: r.UID, Flags: m.flags.list()})
	}
	for _, k := range order {
		w.publish(*changes[k])
		bodies.add(op.sum, d.Body, op.search, len(changes[k].Messages))
	}
	var err error
	if op.res.QueueIDs, err = enqueue(ctx, tx, d.Queue, op.date); err != nil || op.also == nil {
		return err
	}
	return op.also(tx, &op.res)
}

// fileMessage files m in t's folder under the UID it takes from the
// folder's row; the message row is queued on batch. Over quota it returns
// a result with Err set and changes nothing.
func fileMessage(ctx context.Context, tx pgx.Tx, batch *pgx.Batch, a *account, t store.Target, m *newMessage) (store.TargetResult, uint64, error) {
	if a == nil {
		return store.TargetResult{}, 0, fmt.Errorf("%w: empty account id", store.ErrInvalid)
	}
	usage := a.usage
	if !t.SoftQuota && overQuota(usage, m.size, t.Quota) {
		return store.TargetResult{Err: store.ErrQuota}, 0, nil
	}
	id, validity, uid, err := takeUID(ctx, tx, t.Account, t.Folder, m)
	if errors.Is(err, store.ErrNoFolder) && !t.NoCreate {
		_, err = createFolder(ctx, tx, t.Account, store.FolderSpec{Name: t.Folder, SpecialUse: t.SpecialUse})
		if err == nil {
			id, validity, uid, err = takeUID(ctx, tx, t.Account, t.Folder, m)
		}
	}
	if err != nil {
		return store.TargetResult{}, 0, err
	}
	batch.Queue(`INSERT INTO messages (account, folder, uid, flags, keywords, date_ns, size, hash, prefix, meta)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.Account, id, uid, m.flags.bits, m.flags.keywordList(), m.date.UnixNano(), m.size, m.hash,
		nonNil(m.prefix), nonNil(m.meta))
	a.addUsage(m.size)
	r := store.TargetResult{UID: UID(uid), UIDValidity: uint32(validity)}
	if t.Quota > 0 {
		over := pastWarning(usage+m.size, t.Quota)
		r.QuotaWarning = over && !a.warned
		a.warned = over
	}
	return r, id, nil
}

// takeUID takes the next UID of a folder for m and counts m in the
// folder's counters. The UPDATE locks the folder's row until the commit, so
// concurrent deliveries, from any node, get distinct, increasing UIDs.
func takeUID(ctx context.Context, tx pgx.Tx, accountID, name string, m *newMessage) (id uint64, validity, uid int64, err error) {
	unseen := 0
	if !m.flags.seen() {
		unseen = 1
	}
	err = tx.QueryRow(ctx, `UPDATE folders SET uid_next = uid_next + 1, messages = messages + 1,
			size = size + $3, unseen = unseen + $4
		WHERE account = $1 AND name = $2 RETURNING id, uid_validity, uid_next - 1`,
		accountID, name, m.size, unseen).Scan(&id, &validity, &uid)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNoFolder
	}
	return id, validity, uid, err
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Append stores a message in one folder on behalf of acc (IMAP APPEND).
func (s *Store) Append(ctx context.Context, acc store.Access, folderName string, body []byte, flags []string, date time.Time, quota int64) (store.TargetResult, error) {
	if acc.ReadOnly {
		return store.TargetResult{}, store.ErrReadOnly
	}
	r, err := s.Deliver(ctx, &store.Delivery{Body: body, Date: date, Targets: []store.Target{{
		Account: acc.Account, Folder: folderName, Flags: flags, Quota: quota, Origin: acc.Origin, NoCreate: true,
	}}})
	if err != nil {
		return store.TargetResult{}, err
	}
	return r.Targets[0], r.Targets[0].Err
}

// newBodies counts the references a transaction adds to bodies.
type newBodies map[[32]byte]*newBody

type newBody struct {
	body   []byte
	search []byte // nil: none
	refs   int
}

func (nb newBodies) add(sum [32]byte, body, search []byte, refs int) {
	if b := nb[sum]; b != nil {
		b.refs += refs
		if b.search == nil {
			b.search = search
		}
		return
	}
	nb[sum] = &newBody{body, search, refs}
}

// queue queues the bodies' rows on batch, in hash order, so that
// transactions adding to the same bodies lock them in one order. A body
// travels also when it is stored already: a round trip to ask first would
// cost more for the usual new message. A stored body without search data
// takes the new one.
func (nb newBodies) queue(batch *pgx.Batch) {
	sums := slices.SortedFunc(maps.Keys(nb), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	for _, sum := range sums {
		b := nb[sum]
		batch.Queue(`INSERT INTO blobs (hash, refs, body, search) VALUES ($1, $2, $3, $4)
			ON CONFLICT (hash) DO UPDATE SET refs = blobs.refs + excluded.refs,
				search = coalesce(blobs.search, excluded.search)`, sum[:], b.refs, b.body, b.search)
	}
}
