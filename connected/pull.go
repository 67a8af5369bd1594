package connected

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"

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
	uids, err := p.newUIDs(st.LastUID, sel.NumMessages)
	if err != nil {
		return 0, err
	}
	if saved.UIDValidity != 0 && saved.UIDValidity != sel.UIDValidity && len(uids) > 0 {
		st.Rematch = uids[len(uids)-1]
		p.log.Info("remote UIDVALIDITY changed: matching its messages with those filed before",
			"old", saved.UIDValidity, "new", sel.UIDValidity, "messages", len(uids))
	}
	unsaved := st != saved
	filed := 0
	for _, uid := range uids {
		next := st
		next.LastUID = uid
		ok, err := p.file(ctx, next)
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
	return filed, p.saveAfter(ctx, st, unsaved, nil)
}

// file fetches one remote message and files it with progress st. It
// passes over (false) a message below the rematch bound that was filed
// before, and one that has vanished from the remote meanwhile.
func (p *pull) file(ctx context.Context, st store.RemoteState) (bool, error) {
	section := &goimap.FetchItemBodySection{Peek: true}
	msgs, err := p.c.Fetch(goimap.UIDSetNum(goimap.UID(st.LastUID)), &goimap.FetchOptions{
		UID: true, InternalDate: true, BodySection: []*goimap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		return false, fmt.Errorf("fetch uid %d: %w", st.LastUID, err)
	}
	i := slices.IndexFunc(msgs, func(m *imapclient.FetchMessageBuffer) bool { return uint32(m.UID) == st.LastUID })
	if i < 0 {
		return false, nil
	}
	body := msgs[i].FindBodySection(section)
	if body == nil {
		return false, fmt.Errorf("fetch uid %d: the server sent no body", st.LastUID)
	}
	digest := sha256.Sum256(body)
	if st.LastUID <= st.Rematch {
		known, err := p.r.opts.Store.RemoteFiled(ctx, p.key, digest[:])
		if err != nil || known {
			return false, err
		}
	}
	err = p.r.opts.Filer.FileRemote(ctx, &delivery.RemoteMessage{
		Mailbox: p.a.Mailbox, Folder: p.a.Into, SpecialUse: p.a.IntoSpecialUse, Host: p.a.Host,
		Body: body, Date: msgs[i].InternalDate, Progress: p.key, State: st, Digest: digest[:],
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

// newUIDs lists the remote UIDs above last, in ascending order.
func (p *pull) newUIDs(last, exists uint32) ([]uint32, error) {
	if exists == 0 {
		return nil, nil
	}
	// "last+1:*" always includes the highest UID, even when it is not
	// above last: filter.
	msgs, err := p.c.Fetch(goimap.UIDSet{{Start: goimap.UID(last + 1), Stop: 0}}, &goimap.FetchOptions{UID: true}).Collect()
	if err != nil {
		return nil, fmt.Errorf("list uids: %w", err)
	}
	var uids []uint32
	for _, m := range msgs {
		if uint32(m.UID) > last {
			uids = append(uids, uint32(m.UID))
		}
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
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
