package imap

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// Replies for the store's errors and our own refusals.
var (
	errNonExistent   = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeNonExistent, Text: "No such mailbox"}
	errTryCreate     = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTryCreate, Text: "No such mailbox"}
	errNoPerm        = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeNoPerm, Text: "Permission denied: read-only access"}
	errOverQuota     = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeOverQuota, Text: "Mailbox is over its quota"}
	errExists        = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	errNoSelect      = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Not a selectable mailbox"}
	errNotSelected   = &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "No mailbox selected"}
	errAccessGone    = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeNoPerm, Text: "Access to this mailbox was removed"}
	errExpungeIssued = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: "EXPUNGEISSUED", Text: "Some of the requested messages no longer exist"}
	errTooBig        = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTooBig, Text: "Message is larger than the append limit"}
	// errUnavailable: the mail store (a database) cannot be reached for
	// now (SPEC §13); RFC 5530's UNAVAILABLE says a subsystem is down.
	errUnavailable = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeUnavailable, Text: "Mail store temporarily unavailable, try again later"}
)

// mapError turns an error from the store into an IMAP reply. Unknown
// errors become a generic NO with a reference that is also logged.
func mapError(log *slog.Logger, err error) error {
	var imapErr *goimap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &imapErr):
		return err
	case errors.Is(err, store.ErrNotFound):
		// A message another session expunged since this one was told.
		return errExpungeIssued
	case errors.Is(err, store.ErrNoFolder):
		return errNonExistent
	case errors.Is(err, store.ErrFolderExists):
		return errExists
	case errors.Is(err, store.ErrQuota):
		return errOverQuota
	case errors.Is(err, store.ErrReadOnly):
		return errNoPerm
	case errors.Is(err, store.ErrUnavailable):
		return errUnavailable
	case errors.Is(err, store.ErrInvalid):
		return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Cannot do that"}
	}
	return errInternal(log, err)
}

// errInternal logs err under a fresh reference and returns a NO naming it.
func errInternal(log *slog.Logger, err error) error {
	var b [6]byte
	rand.Read(b[:])
	ref := hex.EncodeToString(b[:])
	log.Error("imap internal error", "ref", ref, "err", err)
	return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeServerBug, Text: "Internal error, reference " + ref}
}
