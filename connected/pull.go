package connected

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/store"
)

// round connects to the account's server once, files what is new and, with
// delete_remote, deletes what is filed. It returns how many messages it
// filed.
func (r *Runner) round(ctx context.Context, a Account, log *slog.Logger) (int, error) {
	// The connection lives as long as this context: ending the round, or
	// the account, closes it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := r.connect(ctx, a)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Login(a.Username, a.Password).Wait(); err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	sel, err := c.Select(a.Folder, &goimap.SelectOptions{ReadOnly: !a.DeleteRemote}).Wait()
	if err != nil {
		return 0, fmt.Errorf("select %s: %w", a.Folder, err)
	}
	p := &pull{r: r, a: a, c: c, key: a.progressKey(), log: log}
	filed, err := p.run(ctx, sel)
	if a.DeleteRemote && p.durable.LastUID > 0 && sel.NumMessages > 0 {
		if derr := p.deleteFiled(); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	if err == nil {
		// Best effort: what matters is committed already.
		c.Logout().Wait()
	}
	return filed, err
}

// pull is one round's work on the selected remote folder.
type pull struct {
	r   *Runner
	a   Account
	c   *imapclient.Client
	key string
	log *slog.Logger
	// durable is the progress the store holds for the folder's current
	// UIDVALIDITY: remote messages up to durable.LastUID are filed.
	durable store.RemoteState
}

// run files the remote messages not yet filed, in UID order, each with its
// progress in the same commit.
func (p *pull) run(ctx context.Context, sel *goimap.SelectData) (int, error) {
	saved, err := p.r.opts.Store.RemoteProgress(ctx, p.key)
	if err != nil {
		return 0, err
	}
	st := saved
	if saved.UIDValidity != sel.UIDValidity {
		st = store.RemoteState{UIDValidity: sel.UIDValidity}
	} else {
		p.durable = saved
	}
	msgs, err := p.newMessages(st.LastUID, sel.NumMessages)
	if err != nil {
		return 0, err
	}
	if saved.UIDValidity != 0 && saved.UIDValidity != sel.UIDValidity {
		p.log.Info("remote UIDVALIDITY changed: reading the folder again, passing over what was filed before",
			"old", saved.UIDValidity, "new", sel.UIDValidity, "messages", len(msgs))
	}
	unsaved := st != saved
	filed := 0
	for _, batch := range batches(msgs) {
		fetched, err := p.fetch(batch)
		if err != nil {
			return filed, p.saveAfter(ctx, st, unsaved, err)
		}
		for _, m := range batch {
			next := st
			next.LastUID = m.uid
			// A message that vanished from the remote meanwhile is passed over.
			ok := false
			if fm, present := fetched[m.uid]; present {
				ok, err = p.file(ctx, next, fm)
			}
			if err != nil {
				return filed, p.saveAfter(ctx, st, unsaved, err)
			}
			st = next
			if !ok {
				unsaved = true
				continue
			}
			p.durable, unsaved = st, false
			filed++
		}
	}
	return filed, p.saveAfter(ctx, st, unsaved, nil)
}

// remoteMessage is a remote message not filed yet, as listed.
type remoteMessage struct {
	uid  uint32
	size int64
}

// fetchedMessage is a remote message's text and internal date.
type fetchedMessage struct {
	body []byte
	date time.Time
}

// A batch is what one FETCH asks for: the round trips of a first sync of a
// large folder are per batch, its memory is one batch's bodies.
const (
	maxBatch      = 64
	maxBatchBytes = 16 << 20
)

// batches cuts msgs into batches of at most maxBatch messages and
// maxBatchBytes bytes; a larger message is a batch of its own.
func batches(msgs []remoteMessage) [][]remoteMessage {
	var out [][]remoteMessage
	start, bytes := 0, int64(0)
	for i, m := range msgs {
		if i > start && (i-start == maxBatch || bytes+m.size > maxBatchBytes) {
			out = append(out, msgs[start:i])
			start, bytes = i, 0
		}
		bytes += m.size
	}
	if start < len(msgs) {
		out = append(out, msgs[start:])
	}
	return out
}

// fetch reads the bodies of a batch, by UID. A message that has vanished
// from the remote meanwhile is missing from the result.
func (p *pull) fetch(batch []remoteMessage) (map[uint32]fetchedMessage, error) {
	var set goimap.UIDSet
	for _, m := range batch {
		set.AddNum(goimap.UID(m.uid))
	}
	section := &goimap.FetchItemBodySection{Peek: true}
	msgs, err := p.c.Fetch(set, &goimap.FetchOptions{
		UID: true, InternalDate: true, BodySection: []*goimap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch uids %v: %w", set, err)
	}
	out := make(map[uint32]fetchedMessage, len(msgs))
	for _, m := range msgs {
		body := m.FindBodySection(section)
		if body == nil {
			return nil, fmt.Errorf("fetch uid %d: the server sent no body", m.UID)
		}
		out[uint32(m.UID)] = fetchedMessage{body: body, date: m.InternalDate}
	}
	return out, nil
}

// file files one fetched remote message with progress st. It passes over
// (false) a message this account filed before: every message is checked by
// content, because a remote folder recreated under a new UIDVALIDITY may
// get its old messages back at any time, not only when it is first seen.
func (p *pull) file(ctx context.Context, st store.RemoteState, m fetchedMessage) (bool, error) {
	body := m.body
	digest := sha256.Sum256(body)
	known, err := p.r.opts.Store.RemoteFiled(ctx, p.key, digest[:])
	if err != nil || known {
		return false, err
	}
	err = p.r.opts.Filer.FileRemote(ctx, &delivery.RemoteMessage{
		Mailbox: p.a.Mailbox, Folder: p.a.Into, SpecialUse: p.a.IntoSpecialUse, Host: p.a.Host,
		Body: body, Date: m.date, Progress: p.key, State: st, Digest: digest[:],
	})
	return err == nil, err
}

// saveAfter saves progress that passed over known messages without filing
// anything after them; it returns err, or the error of saving.
func (p *pull) saveAfter(ctx context.Context, st store.RemoteState, unsaved bool, err error) error {
	if !unsaved {
		return err
	}
	if serr := p.r.opts.Store.SaveRemoteProgress(ctx, p.key, st); serr != nil {
		return errors.Join(err, serr)
	}
	p.durable = st
	return err
}

// newMessages lists the remote messages above UID last, in ascending UID
// order, with their sizes.
func (p *pull) newMessages(last, exists uint32) ([]remoteMessage, error) {
	if exists == 0 {
		return nil, nil
	}
	// "last+1:*" always includes the highest UID, even when it is not
	// above last: filter.
	msgs, err := p.c.Fetch(goimap.UIDSet{{Start: goimap.UID(last + 1), Stop: 0}}, &goimap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return nil, fmt.Errorf("list uids: %w", err)
	}
	var out []remoteMessage
	for _, m := range msgs {
		if uint32(m.UID) > last {
			out = append(out, remoteMessage{uid: uint32(m.UID), size: m.RFC822Size})
		}
	}
	slices.SortFunc(out, func(a, b remoteMessage) int { return cmp.Compare(a.uid, b.uid) })
	return slices.CompactFunc(out, func(a, b remoteMessage) bool { return a.uid == b.uid }), nil
}

// deleteFiled deletes the remote copies of the messages the store holds:
// every UID up to the durable progress.
func (p *pull) deleteFiled() error {
	set := goimap.UIDSet{{Start: 1, Stop: goimap.UID(p.durable.LastUID)}}
	err := p.c.Store(set, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close()
	if err != nil {
		return fmt.Errorf("flag filed messages deleted: %w", err)
	}
	if p.c.Caps().Has(goimap.CapUIDPlus) {
		err = p.c.UIDExpunge(set).Close()
	} else {
		err = p.c.Expunge().Close()
	}
	if err != nil {
		return fmt.Errorf("expunge filed messages: %w", err)
	}
	return nil
}
