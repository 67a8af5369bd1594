package imap

import (
	"errors"
	"strings"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// Create implements CREATE, making missing parents too.
func (s *session) Create(name string, options *goimap.CreateOptions) error {
	if err := checkNewName(name); err != nil {
		return err
	}
	loc, err := s.locate(name)
	if err != nil {
		return err
	}
	if loc.node {
		return errExists
	}
	if loc.mailbox.ReadOnly {
		return errNoPerm
	}
	if loc.folder == "INBOX" {
		return errExists
	}
	parts := strings.Split(loc.folder, string(delim))
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], string(delim))
		err := s.srv.opts.Store.CreateFolder(s.ctx, loc.mailbox.ID, store.FolderSpec{Name: parent})
		if err != nil && !errors.Is(err, store.ErrFolderExists) {
			return mapError(s.srv.log, err)
		}
	}
	spec := store.FolderSpec{Name: loc.folder}
	if options != nil && len(options.SpecialUse) > 0 {
		spec.SpecialUse = string(options.SpecialUse[0])
	}
	// Subscribing is the client's choice (RFC 3501 6.3.6): CREATE does not.
	return mapError(s.srv.log, s.srv.opts.Store.CreateFolder(s.ctx, loc.mailbox.ID, spec))
}

// Delete implements DELETE. INBOX cannot be deleted; a folder's subfolders
// stay.
func (s *session) Delete(name string) error {
	loc, err := s.locate(name)
	if err != nil {
		return err
	}
	if loc.node {
		return errNoSelect
	}
	if loc.mailbox.ReadOnly {
		return errNoPerm
	}
	if loc.folder == "INBOX" {
		return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	if err := s.srv.opts.Store.DeleteFolder(s.ctx, loc.mailbox.ID, loc.folder); err != nil {
		return mapError(s.srv.log, err)
	}
	return nil
}

// Rename implements RENAME within one mailbox. Renaming INBOX moves its
// messages to the new folder and leaves INBOX empty (RFC 3501).
func (s *session) Rename(oldName, newName string, options *goimap.RenameOptions) error {
	from, err := s.locate(oldName)
	if err != nil {
		return err
	}
	if err := checkNewName(newName); err != nil {
		return err
	}
	to, err := s.locate(newName)
	if err != nil {
		return err
	}
	if from.node || to.node {
		return errNoSelect
	}
	if from.mailbox.ID != to.mailbox.ID {
		return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Cannot rename across mailboxes"}
	}
	if from.mailbox.ReadOnly {
		return errNoPerm
	}
	if from.folder == "INBOX" {
		return s.renameINBOX(from.mailbox, to.folder)
	}
	return mapError(s.srv.log, s.srv.opts.Store.RenameFolder(s.ctx, from.mailbox.ID, from.folder, to.folder, string(delim)))
}

func (s *session) renameINBOX(mb Mailbox, to string) error {
	st := s.srv.opts.Store
	if err := st.CreateFolder(s.ctx, mb.ID, store.FolderSpec{Name: to}); err != nil {
		return mapError(s.srv.log, err)
	}
	acc := s.access(mb)
	view, err := st.Select(s.ctx, acc, "INBOX", false)
	if err != nil {
		return mapError(s.srv.log, err)
	}
	if len(view.UIDs) == 0 {
		return nil
	}
	_, err = st.Copy(s.ctx, acc, view.Info.ID, view.UIDs, acc, to, 0, true)
	return mapError(s.srv.log, err)
}
