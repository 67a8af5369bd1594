package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// openTest opens a store in a temporary directory and checks the file's
// consistency when the test ends.
func openTest(t testing.TB) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mail.db")
	s, err := Open(context.Background(), Options{Path: path, Analyze: func(b []byte) []byte { return []byte(fmt.Sprintf("len=%d", len(b))) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func msg(subject string) []byte {
	return []byte("From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")
}

func deliver(t testing.TB, s *Store, body []byte, accounts ...string) *DeliveryResult {
	t.Helper()
	d := &Delivery{Body: body}
	for _, a := range accounts {
		d.Targets = append(d.Targets, Target{Account: a, Folder: "INBOX", Prefix: []byte("Delivered-To: " + a + "@x\r\n")})
	}
	res, err := s.Deliver(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDeliverStoresBodyOnce(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	var accounts []string
	for i := range 200 {
		accounts = append(accounts, fmt.Sprintf("u%d", i))
	}
	body := msg("hello")
	res := deliver(t, s, body, accounts...)
	for i, r := range res.Targets {
		if r.Err != nil || r.UID != 1 {
			t.Fatalf("target %d: uid %d err %v", i, r.UID, r.Err)
		}
	}
	count, bytes, err := s.BlobStats()
	if err != nil {
		t.Fatal(err)
	}
	if count != 1 || bytes != int64(len(body)) {
		t.Fatalf("blobs: %d (%d bytes), want 1 (%d bytes)", count, bytes, len(body))
	}
	got, err := s.Body(context.Background(), Access{Account: "u7"}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Delivered-To: u7@x\r\n" + string(body); string(got) != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	// Expunging every copy frees the body.
	for _, a := range accounts {
		acc := Access{Account: a}
		if _, err := s.StoreFlags(context.Background(), acc, 1, []UID{1}, FlagsAdd, []string{FlagDeleted}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Expunge(context.Background(), acc, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if count, _, _ := s.BlobStats(); count != 0 {
		t.Fatalf("blobs after expunge: %d", count)
	}
}

func TestFlagsExpungeAndChanges(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	var mu sync.Mutex
	var changes []Change
	s.Subscribe(func(c Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() })

	for i := range 3 {
		deliver(t, s, msg(fmt.Sprint(i)), "anna")
	}
	acc := Access{Account: "anna", Viewer: "anna"}
	view, err := s.Select(ctx, acc, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(view.UIDs, []UID{1, 2, 3}) || view.RecentFrom != 1 || view.Unseen != 3 || view.FirstUnseen != 1 {
		t.Fatalf("view %+v", view)
	}
	if again, _ := s.Select(ctx, acc, "INBOX", true); again.RecentFrom != 4 {
		t.Fatalf("second select recent from %d, want 4", again.RecentFrom)
	}
	got, err := s.StoreFlags(ctx, acc, view.Info.ID, []UID{1, 2}, FlagsAdd, []string{`\seen`, "$Label1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got[0].Flags, []string{FlagSeen, "$Label1"}) {
		t.Fatalf("flags %+v", got)
	}
	st, _ := s.Status(ctx, acc, "INBOX")
	if st.Unseen != 1 || st.Messages != 3 {
		t.Fatalf("status %+v", st)
	}
	s.StoreFlags(ctx, acc, view.Info.ID, []UID{2}, FlagsAdd, []string{FlagDeleted})
	removed, err := s.Expunge(ctx, acc, view.Info.ID, nil)
	if err != nil || !slices.Equal(removed, []UID{2}) {
		t.Fatalf("expunge %v %v", removed, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var kinds []ChangeKind
	var last uint64
	for _, c := range changes {
		if c.TxID < last {
			t.Fatalf("changes out of commit order: %d after %d", c.TxID, last)
		}
		last = c.TxID
		kinds = append(kinds, c.Kind)
	}
	want := []ChangeKind{ChangeNew, ChangeNew, ChangeNew, ChangeFlags, ChangeFlags, ChangeExpunge}
	if !slices.Equal(kinds, want) {
		t.Fatalf("change kinds %v, want %v", kinds, want)
	}
}

func TestPerUserSeen(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	deliver(t, s, msg("shared"), "info")
	anna := Access{Account: "info", Viewer: "anna", SeenPerUser: true}
	bo := Access{Account: "info", Viewer: "bo", SeenPerUser: true}
	carl := Access{Account: "info", Viewer: "carl", SeenPerUser: true, ReadOnly: true}
	if _, err := s.StoreFlags(ctx, anna, 1, []UID{1}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	flagsOf := func(acc Access) []string {
		var flags []string
		s.Messages(ctx, acc, 1, []UID{1}, func(m *MessageInfo) error { flags = m.Flags; return nil })
		return flags
	}
	if f := flagsOf(anna); !slices.Contains(f, FlagSeen) {
		t.Fatalf("anna flags %v", f)
	}
	if f := flagsOf(bo); slices.Contains(f, FlagSeen) {
		t.Fatalf("bo sees anna's \\Seen: %v", f)
	}
	// A reader may mark read for themself, but nothing else.
	if _, err := s.StoreFlags(ctx, carl, 1, []UID{1}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatalf("reader own seen: %v", err)
	}
	if _, err := s.StoreFlags(ctx, carl, 1, []UID{1}, FlagsAdd, []string{FlagFlagged}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("reader flag: %v", err)
	}
	// Shared mode still shows the untouched shared flag: nothing was lost.
	if f := flagsOf(Access{Account: "info", Viewer: "bo"}); slices.Contains(f, FlagSeen) {
		t.Fatalf("shared view changed: %v", f)
	}
	if st, _ := s.Status(ctx, bo, "INBOX"); st.Unseen != 1 {
		t.Fatalf("bo unseen %d", st.Unseen)
	}
	if st, _ := s.Status(ctx, anna, "INBOX"); st.Unseen != 0 {
		t.Fatalf("anna unseen %d", st.Unseen)
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	body := make([]byte, 1000)
	res, err := s.Deliver(ctx, &Delivery{Body: body, Targets: []Target{
		{Account: "small", Folder: "INBOX", Quota: 500},
		{Account: "big", Folder: "INBOX", Quota: 1100},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Targets[0].Err, ErrQuota) || res.Targets[1].Err != nil {
		t.Fatalf("results %+v", res.Targets)
	}
	if !res.Targets[1].QuotaWarning {
		t.Fatal("no quota warning at 91%")
	}
	res, _ = s.Deliver(ctx, &Delivery{Body: []byte("x"), Targets: []Target{{Account: "big", Folder: "INBOX", Quota: 1100}}})
	if res.Targets[0].QuotaWarning {
		t.Fatal("second quota warning")
	}
	if u, _ := s.Usage(ctx, "big"); u != 1001 {
		t.Fatalf("usage %d", u)
	}
	if _, err := s.Append(ctx, Access{Account: "big"}, "INBOX", body, nil, time.Now(), 1100); !errors.Is(err, ErrQuota) {
		t.Fatalf("append over quota: %v", err)
	}
}

func TestCopyMoveAndFolders(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	if _, err := s.EnsureFolders(ctx, "anna", []FolderSpec{{Name: "INBOX"}, {Name: "Archive", SpecialUse: `\Archive`}}); err != nil {
		t.Fatal(err)
	}
	deliver(t, s, msg("a"), "anna")
	deliver(t, s, msg("b"), "anna")
	acc := Access{Account: "anna", Viewer: "anna"}
	inbox, _ := s.Folder(ctx, "anna", "INBOX")
	res, err := s.Copy(ctx, acc, inbox.ID, []UID{1, 2}, acc, "Archive", 0, true)
	if err != nil || !slices.Equal(res.Dest, []UID{1, 2}) {
		t.Fatalf("move %+v %v", res, err)
	}
	if st, _ := s.Folder(ctx, "anna", "INBOX"); st.Messages != 0 {
		t.Fatalf("inbox after move %+v", st)
	}
	if err := s.CreateFolder(ctx, "anna", FolderSpec{Name: "Archive/2026"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameFolder(ctx, "anna", "Archive", "Old", "/"); err != nil {
		t.Fatal(err)
	}
	folders, _ := s.Folders(ctx, "anna")
	var names []string
	for _, f := range folders {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"INBOX", "Old", "Old/2026"}) {
		t.Fatalf("folders %v", names)
	}
	if err := s.DeleteFolder(ctx, "anna", "Old"); err != nil {
		t.Fatal(err)
	}
	if count, _, _ := s.BlobStats(); count != 0 {
		t.Fatalf("blobs left %d", count)
	}
	if u, _ := s.Usage(ctx, "anna"); u != 0 {
		t.Fatalf("usage %d", u)
	}
}

func TestReopenKeepsState(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mail.db")
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, msg("x"), "anna")
	acc := Access{Account: "anna"}
	before, _ := s.Select(ctx, acc, "INBOX", false)
	s.StoreFlags(ctx, acc, before.Info.ID, []UID{1}, FlagsAdd, []string{FlagFlagged})
	s.Close()
	s, err = Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, _ := s.Select(ctx, acc, "INBOX", false)
	if after.Info.UIDValidity != before.Info.UIDValidity || !slices.Equal(after.UIDs, before.UIDs) {
		t.Fatalf("after reopen %+v, before %+v", after, before)
	}
	var flags []string
	s.Messages(ctx, acc, after.Info.ID, after.UIDs, func(m *MessageInfo) error { flags = m.Flags; return nil })
	if !slices.Equal(flags, []string{FlagFlagged}) {
		t.Fatalf("flags %v", flags)
	}
}

func TestConcurrentDeliveriesShareCommits(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deliver(t, s, msg(fmt.Sprint(i)), "anna")
		}()
	}
	wg.Wait()
	view, err := s.Select(context.Background(), Access{Account: "anna"}, "INBOX", false)
	if err != nil || len(view.UIDs) != 64 || view.UIDs[63] != 64 {
		t.Fatalf("view %d uids, err %v", len(view.UIDs), err)
	}
}

func TestFailingWriteDoesNotSinkBatch(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	deliver(t, s, msg("x"), "anna")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs[i] = s.CreateFolder(ctx, "anna", FolderSpec{Name: "INBOX"}) // exists: fails
			} else {
				errs[i] = s.CreateFolder(ctx, "anna", FolderSpec{Name: fmt.Sprint("f", i)})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && !errors.Is(err, ErrFolderExists) || i%2 == 1 && err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	folders, _ := s.Folders(ctx, "anna")
	if len(folders) != 11 {
		t.Fatalf("%d folders", len(folders))
	}
}

func TestQueueAndAutoReplyMemory(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	res, err := s.Deliver(ctx, &Delivery{Body: msg("q"), Queue: []NewQueuedMessage{{From: "a@x", Recipients: []string{"b@y", "c@y"}, Body: msg("q")}}})
	if err != nil || len(res.QueueIDs) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	due, err := s.QueueDue(ctx, time.Now().Add(time.Second), 10)
	if err != nil || len(due) != 1 || len(due[0].Recipients) != 2 {
		t.Fatalf("due %+v %v", due, err)
	}
	m := due[0]
	m.Recipients[0].State = RecipientDelivered
	m.NextAttempt = time.Now().Add(time.Hour)
	if err := s.QueueUpdate(ctx, m); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.QueueDue(ctx, time.Now(), 10); len(due) != 0 {
		t.Fatalf("due after update: %d", len(due))
	}
	m.Recipients[1].State = RecipientFailed
	s.QueueUpdate(ctx, m)
	if _, err := s.QueueBody(ctx, m.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("body after done: %v", err)
	}
	now := time.Now()
	for i, want := range []bool{true, false} {
		ok, err := s.NoteAutoReply(ctx, "anna", "X@Y", "k1", now.Add(time.Duration(i)*time.Hour), 7*24*time.Hour)
		if err != nil || ok != want {
			t.Fatalf("note %d: %v %v", i, ok, err)
		}
	}
	if ok, _ := s.NoteAutoReply(ctx, "anna", "x@y", "k2", now, 7*24*time.Hour); !ok {
		t.Fatal("new text should reply again")
	}
	if ok, _ := s.NoteAutoReply(ctx, "anna", "x@y", "k1", now.Add(8*24*time.Hour), 7*24*time.Hour); !ok {
		t.Fatal("after the window a reply is due again")
	}
}

func TestRemoteProgressAndDigests(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	const key = "anna\x00imap.example.org:993\x00anna@example.org\x00INBOX"
	digest := []byte("0123456789abcdef0123456789abcdef")
	if st, err := s.RemoteProgress(ctx, key); err != nil || st != (RemoteState{}) {
		t.Fatalf("fresh progress %+v %v", st, err)
	}
	d := &Delivery{Body: msg("pulled"), Targets: []Target{{Account: "anna", Folder: "INBOX", Quota: 10000}}}
	if _, err := s.DeliverRemote(ctx, key, RemoteState{UIDValidity: 7, LastUID: 3}, digest, d); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.RemoteProgress(ctx, key); st != (RemoteState{7, 3}) {
		t.Fatalf("progress %+v", st)
	}
	if filed, err := s.RemoteFiled(ctx, key, digest); err != nil || !filed {
		t.Fatalf("filed %v %v", filed, err)
	}
	if filed, _ := s.RemoteFiled(ctx, "bo"+key[4:], digest); filed {
		t.Fatal("another account's digest found")
	}
	if filed, _ := s.RemoteFiled(ctx, key, []byte("ffffffffffffffffffffffffffffffff")); filed {
		t.Fatal("unknown digest found")
	}

	// Over quota nothing is filed and the state stays where it was.
	d = &Delivery{Body: make([]byte, 20000), Targets: []Target{{Account: "anna", Folder: "INBOX", Quota: 10000}}}
	if _, err := s.DeliverRemote(ctx, key, RemoteState{UIDValidity: 7, LastUID: 4}, []byte("ffffffffffffffffffffffffffffffff"), d); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if st, _ := s.RemoteProgress(ctx, key); st != (RemoteState{7, 3}) {
		t.Fatalf("progress after refusal %+v", st)
	}
	if f, _ := s.Folder(ctx, "anna", "INBOX"); f.Messages != 1 {
		t.Fatalf("%d messages after refusal", f.Messages)
	}
	if filed, _ := s.RemoteFiled(ctx, key, []byte("ffffffffffffffffffffffffffffffff")); filed {
		t.Fatal("refused message's digest recorded")
	}

	if err := s.SaveRemoteProgress(ctx, key, RemoteState{UIDValidity: 8, LastUID: 1}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.RemoteProgress(ctx, key); st != (RemoteState{8, 1}) {
		t.Fatalf("saved progress %+v", st)
	}
}

// TestSelectKeywords: Select lists the keywords on the folder's messages,
// sorted and bounded.
func TestSelectKeywords(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	for i := range 3 {
		deliver(t, s, msg(fmt.Sprint(i)), "anna")
	}
	acc := Access{Account: "anna", Viewer: "anna"}
	view, err := s.Select(ctx, acc, "INBOX", false)
	if err != nil || len(view.Keywords) != 0 {
		t.Fatalf("keywords of a fresh folder %v %v", view.Keywords, err)
	}
	s.StoreFlags(ctx, acc, view.Info.ID, []UID{1}, FlagsAdd, []string{"zeta", FlagSeen})
	s.StoreFlags(ctx, acc, view.Info.ID, []UID{3}, FlagsAdd, []string{"$Label1", "zeta"})
	if view, _ = s.Select(ctx, acc, "INBOX", false); !slices.Equal(view.Keywords, []string{"$Label1", "zeta"}) {
		t.Fatalf("keywords %v", view.Keywords)
	}
	var many []string
	for i := range MaxFolderKeywords + 20 {
		many = append(many, fmt.Sprintf("k%03d", i))
	}
	s.StoreFlags(ctx, acc, view.Info.ID, []UID{2}, FlagsAdd, many)
	if view, _ = s.Select(ctx, acc, "INBOX", false); len(view.Keywords) != MaxFolderKeywords {
		t.Fatalf("%d keywords listed, want the bound %d", len(view.Keywords), MaxFolderKeywords)
	}
}

// TestRecentClaimsAndOwnSeenInChanges: Select without a claim leaves
// \Recent in place, ClaimRecent moves it on, Status counts it; a change of
// shared flags carries each viewer's own \Seen.
func TestRecentClaimsAndOwnSeenInChanges(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	for i := range 3 {
		deliver(t, s, msg(fmt.Sprint(i)), "info")
	}
	anna := Access{Account: "info", Viewer: "anna", SeenPerUser: true}
	look, err := s.Select(ctx, anna, "INBOX", false)
	if err != nil || look.RecentFrom != 1 {
		t.Fatalf("look: recent from %d, %v", look.RecentFrom, err)
	}
	if err := s.ClaimRecent(ctx, anna, look.Info.ID, 3); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx, anna, "INBOX"); err != nil || st.RecentFrom != 3 || st.Recent != 1 {
		t.Fatalf("status %+v %v", st, err)
	}

	var mu sync.Mutex
	var changes []Change
	s.Subscribe(func(c Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() })
	if _, err := s.StoreFlags(ctx, anna, look.Info.ID, []UID{1}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	bo := Access{Account: "info", Viewer: "bo", SeenPerUser: true}
	if _, err := s.StoreFlags(ctx, bo, look.Info.ID, []UID{1}, FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	last := changes[len(changes)-1]
	if last.Viewer != "" || len(last.Messages) != 1 || !maps.Equal(last.Messages[0].OwnSeen, map[string]bool{"anna": true}) {
		t.Fatalf("shared change %+v", last)
	}
}
