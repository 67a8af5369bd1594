package store

import "errors"

// Sentinel errors. Callers test for them with errors.Is; the protocol
// packages map each to a reply.
var (
	// ErrNotFound: the thing asked for (message, queue entry) does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrNoFolder: the folder does not exist.
	ErrNoFolder = errors.New("store: no such folder")
	// ErrFolderExists: a folder of that name exists already.
	ErrFolderExists = errors.New("store: folder exists")
	// ErrQuota: the operation would take the mailbox over its quota.
	ErrQuota = errors.New("store: quota exceeded")
	// ErrReadOnly: the caller's access does not allow changes.
	ErrReadOnly = errors.New("store: read-only access")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalid: the request makes no sense (empty name, bad argument).
	ErrInvalid = errors.New("store: invalid request")
	// ErrConflict: a conditional change found the record changed since
	// the caller read it (HTTP If-Match).
	ErrConflict = errors.New("store: changed since it was read")
	// ErrInUse: another process has the store open (a running server).
	ErrInUse = errors.New("store: in use by another process")
	// ErrNotEmpty: a copy's target already holds a store (Loader).
	ErrNotEmpty = errors.New("store: the target of the copy is not empty")
	// ErrUnavailable: the store cannot be reached for now (a database
	// server that is down or unreachable); trying again later may work,
	// and nothing was changed unless the error says a commit was cut off.
	ErrUnavailable = errors.New("store: temporarily unavailable")
	// ErrUnsupported: the backend does not do this; the error says what to use instead.
	ErrUnsupported = errors.New("store: not supported by this backend")
)
