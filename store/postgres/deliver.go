package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"postkasse.dev/postkasse/store"
)

// newMessage is a message about to be filed.
type newMessage struct {
	flags  store.FlagSet
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
	msgs []newMessage // per target, by plan
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

// plan checks each target of the delivery against its account's quota and
// books the accepted ones in p, which takes their UIDs for the whole group
// at once. The accounts of its targets are locked already.
func (op *delivery) plan(accounts map[string]*account, p *uidPlan) error {
	d := op.d
	op.res = store.DeliveryResult{Targets: make([]store.TargetResult, len(d.Targets))}
	op.msgs = make([]newMessage, len(d.Targets))
	for i, t := range d.Targets {
		a := accounts[t.Account]
		if a == nil {
			return fmt.Errorf("deliver to %s/%s: %w: empty account id", t.Account, t.Folder, store.ErrInvalid)
		}
		m := newMessage{flags: store.ParseFlags(t.Flags), date: op.date, size: int64(len(t.Prefix) + len(d.Body)),
			hash: op.sum[:], prefix: t.Prefix, meta: op.meta}
		usage := a.usage
		if !t.SoftQuota && overQuota(usage, m.size, t.Quota) {
			op.res.Targets[i].Err = store.ErrQuota
			continue
		}
		p.book(t, &m)
		a.addUsage(m.size)
		if t.Quota > 0 {
			over := pastWarning(usage+m.size, t.Quota)
			op.res.Targets[i].QuotaWarning = over && !a.warned
			a.warned = over
		}
		op.msgs[i] = m
	}
	return nil
}

// file carries out one planned delivery in tx once p has taken the UIDs: it
// adds its message rows to rows, counts the references to the body in
// bodies, and queues its outbound copies.
func (op *delivery) file(ctx context.Context, tx pgx.Tx, w *txState, p *uidPlan, batch *pgx.Batch, rows *newRows, bodies newBodies) error {
	d := op.d
	// One change per folder, listing its new messages, as bbolt has it.
	changes := make(map[folderKey]*store.Change)
	var order []folderKey
	for i, t := range d.Targets {
		r := &op.res.Targets[i]
		if r.Err != nil {
			continue
		}
		f := p.folders[folderName{t.Account, t.Folder}]
		if !f.found {
			return fmt.Errorf("deliver to %s/%s: %w", t.Account, t.Folder, store.ErrNoFolder)
		}
		uid, m := f.next, &op.msgs[i]
		f.next++
		rows.add(batch, t.Account, f.id, uid, m)
		r.UID, r.UIDValidity = UID(uid), uint32(f.validity)
		k := folderKey{t.Account, f.id}
		c := changes[k]
		if c == nil {
			c = &store.Change{Kind: store.ChangeNew, Account: t.Account, FolderID: f.id, Folder: t.Folder, Origin: t.Origin}
			changes[k] = c
			order = append(order, k)
		}
		c.Messages = append(c.Messages, store.ChangedMessage{UID: r.UID, Flags: m.flags.List()})
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

// newRows collects a group's message rows, to be inserted with one
// statement: a delivery to a thousand mailboxes is one INSERT, not a
// thousand. A row with keywords (APPEND, import) goes alone: an array
// of text[] does not unnest into rows of arrays.
type newRows struct {
	accounts                []string
	folders, uids           []int64
	flags                   []int32
	dates, sizes            []int64
	hashes, prefixes, metas [][]byte
}

// add adds a row, or queues it on batch when it has keywords.
func (r *newRows) add(batch *pgx.Batch, account string, folder uint64, uid int64, m *newMessage) {
	if len(m.flags.Keywords) > 0 {
		batch.Queue(`INSERT INTO messages (account, folder, uid, flags, keywords, date_ns, size, hash, prefix, meta)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			account, folder, uid, m.flags.Bits, keywordList(m.flags), m.date.UnixNano(), m.size, m.hash,
			nonNil(m.prefix), nonNil(m.meta))
		return
	}
	r.accounts = append(r.accounts, account)
	r.folders, r.uids = append(r.folders, int64(folder)), append(r.uids, uid)
	r.flags = append(r.flags, int32(m.flags.Bits))
	r.dates, r.sizes = append(r.dates, m.date.UnixNano()), append(r.sizes, m.size)
	r.hashes, r.prefixes, r.metas = append(r.hashes, m.hash), append(r.prefixes, nonNil(m.prefix)), append(r.metas, nonNil(m.meta))
}

// queue queues the insert of the rows added on batch.
func (r *newRows) queue(batch *pgx.Batch) {
	if len(r.accounts) == 0 {
		return
	}
	batch.Queue(`INSERT INTO messages (account, folder, uid, flags, date_ns, size, hash, prefix, meta)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::integer[], $5::bigint[], $6::bigint[],
			$7::bytea[], $8::bytea[], $9::bytea[])`,
		r.accounts, r.folders, r.uids, r.flags, r.dates, r.sizes, r.hashes, r.prefixes, r.metas)
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
