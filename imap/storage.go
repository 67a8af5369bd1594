package imap

import (
	"context"
	"time"

	"postkasse.dev/postkasse/store"
)

// Store is the part of the mail store the IMAP server uses: folders,
// messages, flags and the change feed. *store.Store (bbolt) and
// *postgres.Store implement it.
type Store interface {
	Append(ctx context.Context, acc store.Access, folder string, body []byte, flags []string, date time.Time, quota int64) (store.TargetResult, error)
	Body(ctx context.Context, acc store.Access, folderID uint64, uid store.UID) ([]byte, error)
	Bodies(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(uid store.UID, body []byte) error) error
	ClaimRecent(ctx context.Context, acc store.Access, folderID uint64, below store.UID) error
	Copy(ctx context.Context, src store.Access, folderID uint64, uids []store.UID, dst store.Access, dstName string, quota int64, move bool) (store.CopyResult, error)
	CreateFolder(ctx context.Context, accountID string, spec store.FolderSpec) error
	DeleteFolder(ctx context.Context, accountID, name string) error
	EnsureFolders(ctx context.Context, accountID string, specs []store.FolderSpec) ([]string, error)
	Expunge(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID) ([]store.UID, error)
	Folder(ctx context.Context, accountID, name string) (store.FolderInfo, error)
	Folders(ctx context.Context, accountID string) ([]store.FolderInfo, error)
	Messages(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(info *store.MessageInfo) error) error
	MessagesInPlace(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(info *store.MessageInfo) error) error
	RefreshMeta(ctx context.Context, tag string, stale func(meta []byte) bool, batch int) error
	RenameFolder(ctx context.Context, accountID, oldName, newName string, delim string) error
	Select(ctx context.Context, acc store.Access, name string, claimRecent bool) (store.FolderView, error)
	SetSubscribed(ctx context.Context, viewer, accountID, folder string, on bool) error
	Status(ctx context.Context, acc store.Access, name string) (store.FolderInfo, error)
	StoreFlags(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, op store.FlagOp, flags []string) ([]store.ChangedMessage, error)
	Subscribe(fn func(store.Change)) (cancel func())
	Subscriptions(ctx context.Context, viewer, accountID string) (map[string]bool, error)
}
