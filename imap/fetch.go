package imap

import (
	"errors"
	"fmt"
	"slices"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postkasse.dev/postkasse/store"
)

// Fetch implements FETCH and UID FETCH. Envelope and structure come from
// the cache made at delivery; the body is read only for body sections.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet goimap.NumSet, options *goimap.FetchOptions) error {
	sel, acc, err := s.current()
	if err != nil {
		return err
	}
	refs := sel.resolve(numSet)
	if len(refs) == 0 {
		if sel.goneIn(numSet) {
			return errExpungeIssued
		}
		return nil
	}
	markSeen := !sel.examine && needsSeen(options)
	var unseen []store.UID
	if markSeen {
		if unseen, err = s.unseenAmong(acc, sel, refs); err != nil {
			return err
		}
		if len(unseen) > 0 {
			if _, err := s.srv.opts.Store.StoreFlags(s.ctx, acc, sel.folderID, unseen, store.FlagsAdd, []string{store.FlagSeen}); err != nil && !isReadOnly(err) {
				return mapError(s.srv.log, err)
			}
		}
	}
	next, missing := 0, 0 // readAhead answers in the ascending UID order of refs
	plan := readPlan{decode: options.Envelope || options.BodyStructure != nil}
	if needsText(options) {
		plan.body = func(*decoded) bool { return true }
	} else if plan.decode {
		// A message whose cache is unusable is parsed from its text.
		plan.body = func(d *decoded) bool { return !d.cached }
	}
	err = readAhead(s.ctx, s.srv.opts.Store, acc, sel.folderID, uidsOf(refs), plan, func(m *decoded) error {
		for next < len(refs) && refs[next].uid < m.info.UID {
			next, missing = next+1, missing+1
		}
		if next == len(refs) || refs[next].uid != m.info.UID {
			return fmt.Errorf("imap: store answered UID %d out of order", m.info.UID)
		}
		seq := refs[next].seq
		next++
		// Everything that can fail was read before the response begins:
		// an error must never land inside a half-written FETCH.
		if m.gone {
			missing++
			return nil
		}
		rw := w.CreateMessage(seq)
		if err := s.fetchOne(rw, acc, sel, m, m.body, options, markSeen); err != nil {
			rw.Close()
			return err
		}
		return rw.Close()
	})
	if err != nil {
		return mapError(s.srv.log, err) // the store's, read ahead
	}
	if missing += len(refs) - next; missing > 0 || sel.goneIn(numSet) {
		// Expunged by another session since this one was told of them
		// (RFC 2180 4.1.2); the expunge reaches the client later.
		return errExpungeIssued
	}
	return nil
}

// needsSeen reports whether a fetch sets \Seen: any non-PEEK body section.
func needsSeen(options *goimap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range options.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

func isReadOnly(err error) bool { return errors.Is(err, store.ErrReadOnly) }

// unseenAmong returns the UIDs of refs without \Seen for this viewer.
func (s *session) unseenAmong(acc store.Access, sel *selection, refs []msgRef) ([]store.UID, error) {
	var out []store.UID
	err := s.srv.opts.Store.Messages(s.ctx, acc, sel.folderID, uidsOf(refs), func(m *store.MessageInfo) error {
		if !slices.Contains(m.Flags, store.FlagSeen) {
			out = append(out, m.UID)
		}
		return nil
	})
	return out, mapError(s.srv.log, err)
}

// needsText reports whether a FETCH needs the messages' text: for body
// sections, or for the size of a decoded part.
func needsText(options *goimap.FetchOptions) bool {
	return len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
}

func (s *session) fetchOne(w *imapserver.FetchResponseWriter, acc store.Access, sel *selection, d *decoded, body []byte, options *goimap.FetchOptions, markSeen bool) error {
	m := &d.info
	if options.UID {
		w.WriteUID(goimap.UID(m.UID))
	}
	if options.Flags || markSeen {
		flags := m.Flags
		if markSeen && !slices.Contains(flags, store.FlagSeen) && (!acc.ReadOnly || acc.SeenPerUser) {
			flags = append(slices.Clone(flags), store.FlagSeen)
		}
		w.WriteFlags(sel.recentFlags(m.UID, toIMAPFlags(flags)))
	}
	if options.RFC822Size {
		w.WriteRFC822Size(m.Size)
	}
	if options.InternalDate {
		w.WriteInternalDate(m.InternalDate)
	}
	if options.Envelope || options.BodyStructure != nil {
		env, bs := d.env, d.bs
		if !d.cached {
			// No usable cache (an old or damaged record): parse now.
			env, bs = parseMessage(body)
		}
		if options.Envelope {
			w.WriteEnvelope(env)
		}
		if options.BodyStructure != nil {
			w.WriteBodyStructure(bs)
		}
	}
	return writeSections(w, body, options)
}

func (s *session) body(acc store.Access, sel *selection, uid store.UID) ([]byte, error) {
	body, err := s.srv.opts.Store.Body(s.ctx, acc, sel.folderID, uid)
	return body, mapError(s.srv.log, err)
}

// writeSections writes BODY[...] and BINARY[...] items. Whole-message
// sections are written straight from the stored bytes.
func writeSections(w *imapserver.FetchResponseWriter, body []byte, options *goimap.FetchOptions) error {
	src := &sections{msg: body}
	for _, section := range options.BodySection {
		data := src.body(section)
		if err := writeLiteral(w.WriteBodySection(section, int64(len(data))), data); err != nil {
			return err
		}
	}
	for _, section := range options.BinarySection {
		data := src.binary(section)
		if err := writeLiteral(w.WriteBinarySection(section, int64(len(data))), data); err != nil {
			return err
		}
	}
	for _, section := range options.BinarySectionSize {
		data := src.binary(&goimap.FetchItemBinarySection{Part: section.Part})
		w.WriteBinarySectionSize(section, uint32(len(data)))
	}
	return nil
}

func isWholeMessage(section *goimap.FetchItemBodySection) bool {
	return section.Specifier == goimap.PartSpecifierNone && len(section.Part) == 0 &&
		len(section.HeaderFields) == 0 && len(section.HeaderFieldsNot) == 0 && section.Partial == nil
}

func writeLiteral(wc interface {
	Write([]byte) (int, error)
	Close() error
}, data []byte) error {
	if _, err := wc.Write(data); err != nil {
		wc.Close()
		return err
	}
	return wc.Close()
}
