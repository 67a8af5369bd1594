package imap

import (
	"errors"
	"io"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postkasse.dev/postkasse/store"
)

// errExamined refuses changes in a folder opened with EXAMINE.
var errExamined = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Mailbox is read-only (EXAMINE)"}

// Store implements STORE and UID STORE.
func (s *session) Store(w *imapserver.FetchWriter, numSet goimap.NumSet, flags *goimap.StoreFlags, options *goimap.StoreOptions) error {
	sel, acc, err := s.current()
	if err != nil {
		return err
	}
	if sel.examine {
		return errExamined
	}
	refs := sel.resolve(numSet)
	if len(refs) == 0 {
		return nil
	}
	op := map[goimap.StoreFlagsOp]store.FlagOp{
		goimap.StoreFlagsSet: store.FlagsSet, goimap.StoreFlagsAdd: store.FlagsAdd, goimap.StoreFlagsDel: store.FlagsRemove,
	}[flags.Op]
	// A keyword new to the folder must reach this client as FLAGS before
	// any FETCH shows it; FLAGS can only come through the tracker, so the
	// FETCH responses then come that way too, after it.
	echo := !flags.Silent && flags.Op != goimap.StoreFlagsDel && !sel.lf.hasKeywords(flags.Flags)
	sel.setEcho(echo)
	changed, err := s.srv.opts.Store.StoreFlags(s.ctx, acc, sel.folderID, uidsOf(refs), op, fromIMAPFlags(flags.Flags))
	sel.setEcho(false)
	if err != nil {
		return mapError(s.srv.log, err)
	}
	if flags.Silent || echo {
		return nil
	}
	seqOf := make(map[store.UID]uint32, len(refs))
	for _, r := range refs {
		seqOf[r.uid] = r.seq
	}
	_, byUID := numSet.(goimap.UIDSet)
	for _, m := range changed {
		rw := w.CreateMessage(seqOf[m.UID])
		if byUID {
			rw.WriteUID(goimap.UID(m.UID))
		}
		rw.WriteFlags(sel.recentFlags(m.UID, toIMAPFlags(m.Flags)))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// setEcho says whether the feed tells this session of its own flag
// changes.
func (sel *selection) setEcho(on bool) {
	sel.lf.mu.Lock()
	sel.echo = on
	sel.lf.mu.Unlock()
}

// Expunge implements EXPUNGE, UID EXPUNGE and the expunge of CLOSE. The
// responses reach this session, like every other, through its tracker.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *goimap.UIDSet) error {
	sel, acc, err := s.current()
	if err != nil {
		return err
	}
	if sel.examine {
		return nil // CLOSE after EXAMINE expunges nothing
	}
	if acc.ReadOnly && uids == nil && isClosing(w) {
		// RFC 3501 6.4.2: CLOSE of a mailbox selected read-only removes
		// nothing and gives no error; a reader's EXPUNGE is still refused.
		return nil
	}
	var list []store.UID
	if uids != nil {
		list = uidsOf(sel.resolve(*uids))
		if len(list) == 0 {
			return nil
		}
	}
	_, err = s.srv.opts.Store.Expunge(s.ctx, acc, sel.folderID, list)
	return mapError(s.srv.log, err)
}

// isClosing tells CLOSE from EXPUNGE: go-imap expunges for CLOSE through
// a writer without a connection, because CLOSE sends no EXPUNGE responses.
func isClosing(w *imapserver.ExpungeWriter) bool {
	return w == nil || *w == imapserver.ExpungeWriter{}
}

// Copy implements COPY and UID COPY.
func (s *session) Copy(numSet goimap.NumSet, dest string) (*goimap.CopyData, error) {
	return s.copyOrMove(numSet, dest, false)
}

// Move implements MOVE and UID MOVE (RFC 6851): COPYUID first, then the
// expunges, which the tracker delivers when the command polls.
func (s *session) Move(w *imapserver.MoveWriter, numSet goimap.NumSet, dest string) error {
	data, err := s.copyOrMove(numSet, dest, true)
	if err != nil || data == nil {
		return err
	}
	return w.WriteCopyData(data)
}

func (s *session) copyOrMove(numSet goimap.NumSet, dest string, move bool) (*goimap.CopyData, error) {
	sel, acc, err := s.current()
	if err != nil {
		return nil, err
	}
	if move && sel.examine {
		return nil, errExamined
	}
	loc, err := s.locate(dest)
	if err != nil {
		return nil, err
	}
	if loc.node {
		return nil, errNoSelect
	}
	refs := sel.resolve(numSet)
	if len(refs) == 0 {
		return nil, nil
	}
	dst := s.access(loc.mailbox)
	res, err := s.srv.opts.Store.Copy(s.ctx, acc, sel.folderID, uidsOf(refs), dst, loc.folder, loc.mailbox.Quota, move)
	if errors.Is(err, store.ErrNoFolder) {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	if len(res.Source) == 0 {
		// Another session expunged or moved them all first: nothing to
		// report, and COPYUID cannot name an empty set.
		return nil, nil
	}
	data := &goimap.CopyData{UIDValidity: res.UIDValidity}
	for i := range res.Source {
		data.SourceUIDs.AddNum(goimap.UID(res.Source[i]))
		data.DestUIDs.AddNum(goimap.UID(res.Dest[i]))
	}
	return data, nil
}

// Append implements APPEND.
func (s *session) Append(name string, r goimap.LiteralReader, options *goimap.AppendOptions) (*goimap.AppendData, error) {
	limit := int64(s.srv.opts.AppendLimit)
	if limit > 0 && r.Size() > limit {
		io.Copy(io.Discard, r)
		return nil, errTooBig
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	loc, err := s.locate(name)
	if err != nil {
		return nil, err
	}
	if loc.node {
		return nil, errNoSelect
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	acc := s.access(loc.mailbox)
	if sel := s.selected; sel != nil && sel.mailbox.ID == loc.mailbox.ID && sel.folder == loc.folder {
		acc.Origin = sel
	}
	res, err := s.srv.opts.Store.Append(s.ctx, acc, loc.folder, body, fromIMAPFlags(options.Flags), date, loc.mailbox.Quota)
	if errors.Is(err, store.ErrNoFolder) {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, mapError(s.srv.log, err)
	}
	return &goimap.AppendData{UID: goimap.UID(res.UID), UIDValidity: res.UIDValidity}, nil
}
