// Package storetest is the conformance suite of postkasse's store backends:
// the behaviour every backend (bbolt in package store, PostgreSQL in
// store/postgres) must show, written once against the Backend interface.
// Each backend's tests call Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// Backend is the store as the suite uses it.
type Backend interface {
	Deliver(ctx context.Context, d *store.Delivery) (*store.DeliveryResult, error)
	Append(ctx context.Context, acc store.Access, folder string, body []byte, flags []string, date time.Time, quota int64) (store.TargetResult, error)
	EnsureFolders(ctx context.Context, accountID string, specs []store.FolderSpec) ([]string, error)
	Folders(ctx context.Context, accountID string) ([]store.FolderInfo, error)
	Folder(ctx context.Context, accountID, name string) (store.FolderInfo, error)
	CreateFolder(ctx context.Context, accountID string, spec store.FolderSpec) error
	DeleteFolder(ctx context.Context, accountID, name string) error
	RenameFolder(ctx context.Context, accountID, oldName, newName string, delim string) error
	Usage(ctx context.Context, accountID string) (int64, error)
	SetSubscribed(ctx context.Context, viewer, accountID, folder string, on bool) error
	Subscriptions(ctx context.Context, viewer, accountID string) (map[string]bool, error)

	Select(ctx context.Context, acc store.Access, name string, claimRecent bool) (store.FolderView, error)
	Status(ctx context.Context, acc store.Access, name string) (store.FolderInfo, error)
	Messages(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(info *store.MessageInfo) error) error
	MessagesInPlace(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(info *store.MessageInfo) error) error
	Body(ctx context.Context, acc store.Access, folderID uint64, uid store.UID) ([]byte, error)
	Bodies(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(uid store.UID, body []byte) error) error
	StoreFlags(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, op store.FlagOp, flags []string) ([]store.ChangedMessage, error)
	Expunge(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID) ([]store.UID, error)
	Copy(ctx context.Context, src store.Access, folderID uint64, uids []store.UID, dst store.Access, dstName string, quota int64, move bool) (store.CopyResult, error)

	Enqueue(ctx context.Context, msgs ...store.NewQueuedMessage) ([]uint64, error)
	QueueList(ctx context.Context) ([]store.QueuedMessage, error)
	QueueDue(ctx context.Context, now time.Time, limit int) ([]store.QueuedMessage, error)
	QueueGet(ctx context.Context, id uint64) (store.QueuedMessage, error)
	QueueBody(ctx context.Context, id uint64) ([]byte, error)
	QueueUpdate(ctx context.Context, m store.QueuedMessage) error
	QueueRemove(ctx context.Context, id uint64) error
	QueueStats(ctx context.Context) (store.QueueStats, error)

	NoteAutoReply(ctx context.Context, accountID, sender, textKey string, now time.Time, window time.Duration) (bool, error)
	RemoteProgress(ctx context.Context, key string) (store.RemoteState, error)
	DeliverRemote(ctx context.Context, key string, st store.RemoteState, digest []byte, d *store.Delivery) (*store.DeliveryResult, error)
	RemoteFiled(ctx context.Context, key string, digest []byte) (bool, error)
	SaveRemoteProgress(ctx context.Context, key string, st store.RemoteState) error

	ClaimRecent(ctx context.Context, acc store.Access, folderID uint64, below store.UID) error
	CheckRoom(ctx context.Context, accountID string, quota, size int64) error

	PutCard(ctx context.Context, book store.Book, name string, data []byte, ifMatch string, now time.Time) (store.Card, bool, error)
	Card(ctx context.Context, book store.Book, name string) (store.Card, error)
	Cards(ctx context.Context, book store.Book) ([]store.Card, error)
	DeleteCard(ctx context.Context, book store.Book, name, ifMatch string, now time.Time) error
	CardChanges(ctx context.Context, book store.Book, since uint64) ([]store.Card, uint64, error)

	PutCacheEntry(ctx context.Context, key string, data []byte) error
	CacheEntry(ctx context.Context, key string) ([]byte, error)
	DeleteCacheEntry(ctx context.Context, key string) error

	Accounts(ctx context.Context) ([]store.AccountStats, error)
	PurgeAccount(ctx context.Context, id string) error
	Import(ctx context.Context, t store.Target, digest []byte, body []byte, date time.Time) (bool, error)
	Verify(ctx context.Context) error

	Subscribe(fn func(store.Change)) (cancel func())
	BlobStats() (count int, bytes int64, err error)
	SearchDataStats() (count int, bytes int64, err error)
	Check() error
	Close() error
}

// Analyze is the analyser the backends under test must be opened with
// (Options.Analyze): the suite checks that its result comes back with
// every copy of a message.
func Analyze(body []byte) []byte { return []byte(fmt.Sprintf("len=%d", len(body))) }

// Run runs the suite. open returns a new, empty backend opened with
// Analyze and SearchData; it closes the backend (after Check) when the test ends.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Backend)
	}{
		{"DeliverStoresBodyOnce", testDeliverStoresBodyOnce},
		{"SearchDataOncePerBody", testSearchDataOncePerBody},
		{"FlagsExpungeAndChanges", testFlagsExpungeAndChanges},
		{"ChangesCarryOrigin", testChangesCarryOrigin},
		{"PerUserSeen", testPerUserSeen},
		{"Quota", testQuota},
		{"CopyMoveAndFolders", testCopyMoveAndFolders},
		{"CopyRules", testCopyRules},
		{"FolderRules", testFolderRules},
		{"ConcurrentDeliveries", testConcurrentDeliveries},
		{"FailingWriteDoesNotSinkOthers", testFailingWriteDoesNotSinkOthers},
		{"FailingDeliveriesDoNotSinkOthers", testFailingDeliveriesDoNotSinkOthers},
		{"MessagesAndBodies", testMessagesAndBodies},
		{"ManyBodies", testManyBodies},
		{"SelectKeywords", testSelectKeywords},
		{"Subscriptions", testSubscriptions},
		{"QueueAndAutoReplyMemory", testQueueAndAutoReplyMemory},
		{"QueueOperations", testQueueOperations},
		{"QueueStats", testQueueStats},
		{"RemoteProgressAndDigests", testRemoteProgressAndDigests},
		{"RecentClaims", testRecentClaims},
		{"OwnSeenInChanges", testOwnSeenInChanges},
		{"QuotaRule", testQuotaRule},
		{"Cards", testCards},
		{"CacheEntries", testCacheEntries},
		{"Accounts", testAccounts},
		{"PurgeAccount", testPurgeAccount},
		{"Import", testImport},
		{"ImportConcurrently", testImportConcurrently},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func msg(subject string) []byte {
	return []byte("From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")
}

func deliver(t *testing.T, s Backend, body []byte, accounts ...string) *store.DeliveryResult {
	t.Helper()
	res, err := tryDeliver(s, body, accounts...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryDeliver files body in the accounts' INBOXes; goroutines other than the
// test's call it and report with t.Error.
func tryDeliver(s Backend, body []byte, accounts ...string) (*store.DeliveryResult, error) {
	d := &store.Delivery{Body: body}
	for _, a := range accounts {
		d.Targets = append(d.Targets, store.Target{Account: a, Folder: "INBOX", Prefix: []byte("Delivered-To: " + a + "@x\r\n")})
	}
	return s.Deliver(context.Background(), d)
}

func inbox(t *testing.T, s Backend, account string) store.FolderInfo {
	t.Helper()
	f, err := s.Folder(context.Background(), account, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// recorder collects the changes a backend publishes.
type recorder struct {
	mu      sync.Mutex
	changes []store.Change
}

func record(s Backend) *recorder {
	r := &recorder{}
	s.Subscribe(func(c store.Change) { r.mu.Lock(); r.changes = append(r.changes, c); r.mu.Unlock() })
	return r
}

func (r *recorder) all() []store.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// checkFolderOrder fails unless each folder's changes come with
// non-decreasing TxIDs: the order the suite can ask of every backend
// (bbolt's TxIDs also increase across folders).
func checkFolderOrder(t *testing.T, changes []store.Change) {
	t.Helper()
	last := make(map[[2]any]uint64)
	for _, c := range changes {
		k := [2]any{c.Account, c.FolderID}
		if c.TxID < last[k] {
			t.Fatalf("changes of %s/%d out of commit order: %d after %d", c.Account, c.FolderID, c.TxID, last[k])
		}
		last[k] = c.TxID
	}
}

func testDeliverStoresBodyOnce(t *testing.T, s Backend) {
	ctx := context.Background()
	var accounts []string
	for i := range 50 {
		accounts = append(accounts, fmt.Sprintf("u%d", i))
	}
	body := msg("hello")
	res := deliver(t, s, body, accounts...)
	for i, r := range res.Targets {
		if r.Err != nil || r.UID != 1 || r.UIDValidity == 0 {
			t.Fatalf("target %d: %+v", i, r)
		}
	}
	count, bytes, err := s.BlobStats()
	if err != nil {
		t.Fatal(err)
	}
	if count != 1 || bytes != int64(len(body)) {
		t.Fatalf("blobs: %d (%d bytes), want 1 (%d bytes)", count, bytes, len(body))
	}
	u7 := inbox(t, s, "u7")
	got, err := s.Body(ctx, store.Access{Account: "u7"}, u7.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Delivered-To: u7@x\r\n" + string(body); string(got) != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	// The same body again adds references, not a body.
	deliver(t, s, body, "u1")
	if count, _, _ := s.BlobStats(); count != 1 {
		t.Fatalf("blobs after a second delivery: %d", count)
	}
	// Expunging every copy frees the body.
	for _, a := range append(accounts, "u1") {
		acc := store.Access{Account: a}
		id := inbox(t, s, a).ID
		view, _ := s.Select(ctx, acc, "INBOX", false)
		if _, err := s.StoreFlags(ctx, acc, id, view.UIDs, store.FlagsAdd, []string{store.FlagDeleted}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Expunge(ctx, acc, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if count, _, _ := s.BlobStats(); count != 0 {
		t.Fatalf("blobs after expunge: %d", count)
	}
}

func testFlagsExpungeAndChanges(t *testing.T, s Backend) {
	ctx := context.Background()
	rec := record(s)
	for i := range 3 {
		deliver(t, s, msg(fmt.Sprint(i)), "anna")
	}
	acc := store.Access{Account: "anna", Viewer: "anna"}
	view, err := s.Select(ctx, acc, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(view.UIDs, []store.UID{1, 2, 3}) || view.RecentFrom != 1 || view.Unseen != 3 || view.FirstUnseen != 1 || view.Info.UIDNext != 4 {
		t.Fatalf("view %+v", view)
	}
	if again, _ := s.Select(ctx, acc, "INBOX", true); again.RecentFrom != 4 {
		t.Fatalf("second select recent from %d, want 4", again.RecentFrom)
	}
	if ro, _ := s.Select(ctx, store.Access{Account: "anna", ReadOnly: true}, "INBOX", true); ro.RecentFrom != 4 {
		t.Fatalf("read-only select recent from %d, want 4", ro.RecentFrom)
	}
	got, err := s.StoreFlags(ctx, acc, view.Info.ID, []store.UID{1, 2, 9}, store.FlagsAdd, []string{`\seen`, "$Label1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got[0].Flags, []string{store.FlagSeen, "$Label1"}) {
		t.Fatalf("flags %+v", got)
	}
	st, _ := s.Status(ctx, acc, "INBOX")
	if st.Unseen != 1 || st.Messages != 3 {
		t.Fatalf("status %+v", st)
	}
	if v, _ := s.Select(ctx, acc, "INBOX", false); v.FirstUnseen != 3 || v.Unseen != 1 {
		t.Fatalf("first unseen %d, unseen %d", v.FirstUnseen, v.Unseen)
	}
	// Setting the flags a message has already changes nothing.
	if _, err := s.StoreFlags(ctx, acc, view.Info.ID, []store.UID{1}, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	s.StoreFlags(ctx, acc, view.Info.ID, []store.UID{2, 3}, store.FlagsAdd, []string{store.FlagDeleted})
	removed, err := s.Expunge(ctx, acc, view.Info.ID, []store.UID{1, 2})
	if err != nil || !slices.Equal(removed, []store.UID{2}) {
		t.Fatalf("expunge %v %v", removed, err)
	}
	if v, _ := s.Select(ctx, acc, "INBOX", false); !slices.Equal(v.UIDs, []store.UID{1, 3}) || v.TxID == 0 {
		t.Fatalf("after expunge %+v", v)
	}
	changes := rec.all()
	checkFolderOrder(t, changes)
	var kinds []store.ChangeKind
	for _, c := range changes {
		kinds = append(kinds, c.Kind)
	}
	want := []store.ChangeKind{store.ChangeNew, store.ChangeNew, store.ChangeNew, store.ChangeFlags, store.ChangeFlags, store.ChangeExpunge}
	if !slices.Equal(kinds, want) {
		t.Fatalf("change kinds %v, want %v", kinds, want)
	}
	if c := changes[5]; !slices.Equal(c.UIDs, []store.UID{2}) || c.Account != "anna" || c.FolderID != view.Info.ID || c.Folder != "INBOX" {
		t.Fatalf("expunge change %+v", c)
	}
	if c := changes[3]; len(c.Messages) != 2 || c.Messages[1].UID != 2 || !slices.Equal(c.Messages[1].Flags, []string{store.FlagSeen, "$Label1"}) {
		t.Fatalf("flags change %+v", c)
	}
}

// testChangesCarryOrigin: a subscriber learns which access made a change
// and can place it after the view it read.
func testChangesCarryOrigin(t *testing.T, s Backend) {
	ctx := context.Background()
	deliver(t, s, msg("a"), "anna")
	acc := store.Access{Account: "anna", Viewer: "anna", Origin: "session 1"}
	view, err := s.Select(ctx, acc, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(s)
	if _, err := s.StoreFlags(ctx, acc, view.Info.ID, []store.UID{1}, store.FlagsAdd, []string{store.FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, acc, "INBOX", msg("b"), nil, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	changes := rec.all()
	if len(changes) != 2 {
		t.Fatalf("%d changes, want 2 (published before the writes returned)", len(changes))
	}
	for _, c := range changes {
		if c.Origin != "session 1" || c.TxID <= view.TxID {
			t.Fatalf("change %+v after view at %d", c, view.TxID)
		}
	}
	if changes[1].TxID <= changes[0].TxID {
		t.Fatalf("TxIDs %d then %d", changes[0].TxID, changes[1].TxID)
	}
}

func testPerUserSeen(t *testing.T, s Backend) {
	ctx := context.Background()
	deliver(t, s, msg("shared"), "info")
	id := inbox(t, s, "info").ID
	anna := store.Access{Account: "info", Viewer: "anna", SeenPerUser: true}
	bo := store.Access{Account: "info", Viewer: "bo", SeenPerUser: true}
	carl := store.Access{Account: "info", Viewer: "carl", SeenPerUser: true, ReadOnly: true}
	rec := record(s)
	if _, err := s.StoreFlags(ctx, anna, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if c := rec.all(); len(c) != 1 || c[0].Viewer != "anna" || !c[0].Seen {
		t.Fatalf("changes %+v", c)
	}
	flagsOf := func(acc store.Access) []string {
		var flags []string
		s.Messages(ctx, acc, id, []store.UID{1}, func(m *store.MessageInfo) error { flags = m.Flags; return nil })
		return flags
	}
	if f := flagsOf(anna); !slices.Contains(f, store.FlagSeen) {
		t.Fatalf("anna flags %v", f)
	}
	if f := flagsOf(bo); slices.Contains(f, store.FlagSeen) {
		t.Fatalf("bo sees anna's \\Seen: %v", f)
	}
	// A reader may mark read for themself, but nothing else.
	if _, err := s.StoreFlags(ctx, carl, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
		t.Fatalf("reader own seen: %v", err)
	}
	if _, err := s.StoreFlags(ctx, carl, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagFlagged}); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("reader flag: %v", err)
	}
	// Shared mode still shows the untouched shared flag: nothing was lost.
	if f := flagsOf(store.Access{Account: "info", Viewer: "bo"}); slices.Contains(f, store.FlagSeen) {
		t.Fatalf("shared view changed: %v", f)
	}
	if st, _ := s.Status(ctx, bo, "INBOX"); st.Unseen != 1 {
		t.Fatalf("bo unseen %d", st.Unseen)
	}
	if st, _ := s.Status(ctx, anna, "INBOX"); st.Unseen != 0 {
		t.Fatalf("anna unseen %d", st.Unseen)
	}
	if v, _ := s.Select(ctx, anna, "INBOX", false); v.Unseen != 0 || v.FirstUnseen != 0 {
		t.Fatalf("anna's view %+v", v)
	}
	if v, _ := s.Select(ctx, bo, "INBOX", false); v.Unseen != 1 || v.FirstUnseen != 1 {
		t.Fatalf("bo's view %+v", v)
	}
	// Anna's copy carries her \Seen; expunging drops her override.
	s.CreateFolder(ctx, "info", store.FolderSpec{Name: "Done"})
	res, err := s.Copy(ctx, anna, id, []store.UID{1}, anna, "Done", 0, true)
	if err != nil || len(res.Dest) != 1 {
		t.Fatalf("move %+v %v", res, err)
	}
	done, _ := s.Folder(ctx, "info", "Done")
	if f := flagsOf(store.Access{Account: "info"}); f != nil {
		t.Fatalf("moved message still in INBOX: %v", f)
	}
	var flags []string
	s.Messages(ctx, bo, done.ID, res.Dest, func(m *store.MessageInfo) error { flags = m.Flags; return nil })
	if !slices.Equal(flags, []string{store.FlagSeen}) || done.Unseen != 0 {
		t.Fatalf("copied flags %v, unseen %d", flags, done.Unseen)
	}
}

func testQuota(t *testing.T, s Backend) {
	ctx := context.Background()
	body := make([]byte, 1000)
	res, err := s.Deliver(ctx, &store.Delivery{Body: body, Targets: []store.Target{
		{Account: "small", Folder: "INBOX", Quota: 500},
		{Account: "big", Folder: "INBOX", Quota: 1100},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Targets[0].Err, store.ErrQuota) || res.Targets[1].Err != nil {
		t.Fatalf("results %+v", res.Targets)
	}
	if !res.Targets[1].QuotaWarning {
		t.Fatal("no quota warning at 91%")
	}
	res, _ = s.Deliver(ctx, &store.Delivery{Body: []byte("x"), Targets: []store.Target{{Account: "big", Folder: "INBOX", Quota: 1100}}})
	if res.Targets[0].QuotaWarning {
		t.Fatal("second quota warning")
	}
	if u, _ := s.Usage(ctx, "big"); u != 1001 {
		t.Fatalf("usage %d", u)
	}
	if u, _ := s.Usage(ctx, "small"); u != 0 {
		t.Fatalf("refused target's usage %d", u)
	}
	if _, err := s.Append(ctx, store.Access{Account: "big"}, "INBOX", body, nil, time.Now(), 1100); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("append over quota: %v", err)
	}
	// A soft quota files anyway (the recipient was accepted earlier).
	res, err = s.Deliver(ctx, &store.Delivery{Body: body, Targets: []store.Target{{Account: "big", Folder: "INBOX", Quota: 1100, SoftQuota: true}}})
	if err != nil || res.Targets[0].Err != nil || res.Targets[0].UID != 3 {
		t.Fatalf("soft quota %+v %v", res, err)
	}
	if u, _ := s.Usage(ctx, "nobody"); u != 0 {
		t.Fatalf("usage of a missing account %d", u)
	}
}
