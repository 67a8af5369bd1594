package store

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery is one message for one or more folders, and for the outbound
// queue, committed together: either all of it is durable or none.
type Delivery struct {
	Body    []byte    // the message as received, CRLF line endings
	Date    time.Time // internal date; zero means now
	Targets []Target
	Queue   []NewQueuedMessage
}

// Target is one folder a delivery files the message into.
type Target struct {
	Account    string
	Folder     string // created when missing
	SpecialUse string // for a folder created here
	Prefix     []byte // header lines for this mailbox alone (Delivered-To)
	Flags      []string
	Quota      int64 // bytes; 0 means unlimited
	// SoftQuota files the message even over quota (the quota was checked
	// when the recipient was accepted); the 90% warning still applies.
	SoftQuota bool
	Origin    any  // passed on in the Change
	NoCreate  bool // refuse with ErrNoFolder instead of creating the folder
}

// TargetResult is the outcome for one Target.
type TargetResult struct {
	UID         UID
	UIDValidity uint32
	Err         error // ErrQuota: this target alone was refused
	// QuotaWarning: this delivery took the account past 90% of its quota.
	// The caller sends the one warning message.
	QuotaWarning bool
}

// DeliveryResult is the outcome of a Delivery.
type DeliveryResult struct {
	Targets  []TargetResult
	QueueIDs []uint64
}

// Deliver stores a message in every target folder (the body once, however
// many targets) and queues its outbound copies, in one durable commit. A
// target over quota is refused alone (its TargetResult.Err); an error return
// means nothing was stored.
func (s *Store) Deliver(ctx context.Context, d *Delivery) (*DeliveryResult, error) {
	return s.deliverWith(ctx, d, nil)
}

// deliverWith is Deliver with one more write in the same transaction; also
// sees the results of the targets and may refuse the whole commit.
func (s *Store) deliverWith(ctx context.Context, d *Delivery, also func(tx *bolt.Tx, res *DeliveryResult) error) (*DeliveryResult, error) {
	date := d.Date
	if date.IsZero() {
		date = time.Now()
	}
	hash := hashBody(d.Body)
	var meta, search []byte
	if s.analyze != nil && len(d.Targets) > 0 {
		meta = s.analyze(d.Body)
	}
	if s.search != nil && len(d.Targets) > 0 {
		search = append([]byte{}, s.search(d.Body)...) // never nil: nil means none
	}
	res := &DeliveryResult{}
	err := s.update(ctx, func(tx *bolt.Tx, w *txState) error {
		res.Targets = make([]TargetResult, len(d.Targets))
		changes := make(map[folderKey]*Change)
		var order []folderKey
		for i, t := range d.Targets {
			rec := messageRecord{
				flags: ParseFlags(t.Flags), date: date, size: int64(len(t.Prefix) + len(d.Body)),
				hash: hash, prefix: t.Prefix, meta: meta,
			}
			r, key, err := storeMessage(tx, t, &rec, d.Body, search)
			if err != nil {
				return fmt.Errorf("deliver to %s/%s: %w", t.Account, t.Folder, err)
			}
			res.Targets[i] = r
			if r.Err != nil {
				continue
			}
			c := changes[key]
			if c == nil {
				c = &Change{Kind: ChangeNew, Account: t.Account, FolderID: key.folder, Folder: t.Folder, Origin: t.Origin}
				changes[key] = c
				order = append(order, key)
			}
			c.Messages = append(c.Messages, ChangedMessage{UID: r.UID, Flags: rec.flags.List()})
		}
		for _, k := range order {
			w.publish(*changes[k])
		}
		ids, err := enqueue(tx, d.Queue, date)
		res.QueueIDs = ids
		if err != nil || also == nil {
			return err
		}
		return also(tx, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

type folderKey struct {
	account string
	folder  uint64
}

// storeMessage files rec in t's folder, with the body's search data if
// the body is new. Over quota it returns a result with Err set and changes
// nothing.
func storeMessage(tx *bolt.Tx, t Target, rec *messageRecord, body, search []byte) (TargetResult, folderKey, error) {
	a, err := getAccount(tx, t.Account, true)
	if err != nil {
		return TargetResult{}, folderKey{}, err
	}
	usage := a.usage()
	if !t.SoftQuota && overQuota(usage, rec.size, t.Quota) {
		return TargetResult{Err: ErrQuota}, folderKey{}, nil
	}
	id := a.folderID(t.Folder)
	if id == 0 && t.NoCreate {
		return TargetResult{}, folderKey{}, ErrNoFolder
	}
	if id == 0 {
		if id, err = a.createFolder(tx, FolderSpec{Name: t.Folder, SpecialUse: t.SpecialUse}); err != nil {
			return TargetResult{}, folderKey{}, err
		}
	}
	f, err := a.folder(id)
	if err != nil {
		return TargetResult{}, folderKey{}, err
	}
	uid := f.uidNext
	if rec.searchID, err = refBlob(tx, rec.hash, body, search); err != nil {
		return TargetResult{}, folderKey{}, err
	}
	if err := a.messages(id).Put(u32(uid), rec.encode()); err != nil {
		return TargetResult{}, folderKey{}, err
	}
	if err := indexAdd(a.index(id), uid, rec.flags); err != nil {
		return TargetResult{}, folderKey{}, err
	}
	f.uidNext++
	f.messages++
	f.size += rec.size
	if rec.flags.Bits&FlagBitSeen == 0 {
		f.unseen++
	}
	if err := a.putFolder(id, &f); err != nil {
		return TargetResult{}, folderKey{}, err
	}
	if err := a.addUsage(rec.size); err != nil {
		return TargetResult{}, folderKey{}, err
	}
	r := TargetResult{UID: uid, UIDValidity: f.uidValidity}
	if t.Quota > 0 {
		warned := len(a.b.Get(keyWarned)) == 1
		over := pastWarning(usage+rec.size, t.Quota)
		switch {
		case over && !warned:
			r.QuotaWarning = true
			err = a.b.Put(keyWarned, []byte{1})
		case !over && warned:
			err = a.b.Delete(keyWarned)
		}
	}
	return r, folderKey{t.Account, id}, err
}

// Append stores a message in one folder on behalf of acc (IMAP APPEND).
func (s *Store) Append(ctx context.Context, acc Access, folder string, body []byte, flags []string, date time.Time, quota int64) (TargetResult, error) {
	if acc.ReadOnly {
		return TargetResult{}, ErrReadOnly
	}
	r, err := s.Deliver(ctx, &Delivery{Body: body, Date: date, Targets: []Target{{
		Account: acc.Account, Folder: folder, Flags: flags, Quota: quota, Origin: acc.Origin, NoCreate: true,
	}}})
	if err != nil {
		return TargetResult{}, err
	}
	return r.Targets[0], r.Targets[0].Err
}
