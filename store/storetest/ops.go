package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// testAccounts: every account the store holds is listed, sorted, with its
// usage, messages and folders.
func testAccounts(t *testing.T, s Backend) {
	ctx := context.Background()
	if got, err := s.Accounts(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %+v %v", got, err)
	}
	deliver(t, s, msg("1"), "bo", "anna")
	deliver(t, s, msg("2"), "anna")
	if err := s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "Archive"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []store.AccountStats
	for _, a := range []struct {
		id               string
		messages, folder int
	}{{"anna", 2, 2}, {"bo", 1, 1}} {
		usage, err := s.Usage(ctx, a.id)
		if err != nil || usage == 0 {
			t.Fatalf("usage of %s: %d %v", a.id, usage, err)
		}
		want = append(want, store.AccountStats{ID: a.id, Size: usage, Messages: int64(a.messages), Folders: a.folder})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("accounts %+v, want %+v", got, want)
	}
}

// fillForPurge gives two accounts some mail, one message in both, and bo
// every kind of memory the store keeps for an account.
func fillForPurge(t *testing.T, s Backend) {
	t.Helper()
	ctx := context.Background()
	for i := range 5 {
		d := &store.Delivery{Body: msg(fmt.Sprint(i)), Targets: []store.Target{
			{Account: "anna", Folder: "INBOX"}, {Account: "bo", Folder: "INBOX", Flags: []string{store.FlagSeen}},
		}}
		if i%2 == 0 {
			d.Queue = []store.NewQueuedMessage{{From: "bo@contoso.test", Recipients: []string{"x@fabrikam.example"}, Body: d.Body}}
		}
		if _, err := s.Deliver(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range [][2]string{{"anna", "bo"}, {"bo", "bo"}, {"bo", "anna"}} {
		if err := s.SetSubscribed(ctx, sub[0], sub[1], "INBOX", true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.NoteAutoReply(ctx, "bo", "x@fabrikam.example", "away", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	d := &store.Delivery{Body: msg("pulled"), Targets: []store.Target{{Account: "bo", Folder: "INBOX"}}}
	if _, err := s.DeliverRemote(ctx, purgeRemoteKey, store.RemoteState{UIDValidity: 7, LastUID: 3}, []byte("remote digest"), d); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Import(ctx, store.Target{Account: "bo", Folder: "Old"}, []byte("import digest"), msg("imported"), time.Now()); err != nil || !ok {
		t.Fatalf("import: %v %v", ok, err)
	}
}

const purgeRemoteKey = "bo\x00imap.example.org:993\x00bo@example.org\x00INBOX"

// testPurgeAccount: everything of the purged account goes (folders,
// messages, subscriptions by it and of it, automatic-reply, connected
// account and import memories, address books, usage), its own bodies with it; the other
// account keeps its mail and the bodies it shares, the queue stays, and
// the store stays sound.
func testPurgeAccount(t *testing.T, s Backend) {
	ctx := context.Background()
	fillForPurge(t, s)
	boBook := store.Book{Account: "bo", Name: "contacts"}
	card := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:B\r\nEND:VCARD\r\n")
	if _, _, err := s.PutCard(ctx, boBook, "b.vcf", card, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	bodies, _, err := s.BlobStats()
	if err != nil || bodies != 7 {
		t.Fatalf("%d bodies before the purge, want 7: %v", bodies, err)
	}
	if err := s.PurgeAccount(ctx, "bo"); err != nil {
		t.Fatal(err)
	}
	if err := s.PurgeAccount(ctx, "bo"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second purge: %v", err)
	}
	if err := s.PurgeAccount(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("purge of no account: %v", err)
	}
	accounts, err := s.Accounts(ctx)
	if err != nil || len(accounts) != 1 || accounts[0].ID != "anna" || accounts[0].Messages != 5 {
		t.Fatalf("accounts after purge: %+v %v", accounts, err)
	}
	if folders, err := s.Folders(ctx, "bo"); err != nil || len(folders) != 0 {
		t.Fatalf("folders after purge: %+v %v", folders, err)
	}
	if cards, n, err := s.CardChanges(ctx, boBook, 0); err != nil || len(cards) != 0 || n != 0 {
		t.Fatalf("address book after purge: %+v %d %v", cards, n, err)
	}
	if usage, err := s.Usage(ctx, "bo"); err != nil || usage != 0 {
		t.Fatalf("usage after purge: %d %v", usage, err)
	}
	for _, sub := range [][2]string{{"anna", "bo"}, {"bo", "bo"}, {"bo", "anna"}} {
		if subs, _ := s.Subscriptions(ctx, sub[0], sub[1]); len(subs) != 0 {
			t.Fatalf("subscriptions of %s to %s remain: %v", sub[0], sub[1], subs)
		}
	}
	if ok, err := s.NoteAutoReply(ctx, "bo", "x@fabrikam.example", "away", time.Now(), time.Hour); err != nil || !ok {
		t.Fatalf("automatic-reply memory remains: %v %v", ok, err)
	}
	if st, err := s.RemoteProgress(ctx, purgeRemoteKey); err != nil || st != (store.RemoteState{}) {
		t.Fatalf("connected account progress remains: %+v %v", st, err)
	}
	if filed, err := s.RemoteFiled(ctx, purgeRemoteKey, []byte("remote digest")); err != nil || filed {
		t.Fatalf("connected account digest remains: %v %v", filed, err)
	}
	// The pulled and the imported body were bo's alone.
	if n, _, err := s.BlobStats(); err != nil || n != 5 {
		t.Fatalf("%d bodies after the purge, want 5: %v", n, err)
	}
	if q, err := s.QueueList(ctx); err != nil || len(q) != 3 {
		t.Fatalf("queue after purge: %d %v", len(q), err)
	}
	v, err := s.Select(ctx, store.Access{Account: "anna", Viewer: "anna"}, "INBOX", false)
	if err != nil || len(v.UIDs) != 5 {
		t.Fatalf("anna's INBOX: %+v %v", v, err)
	}
	if body, err := s.Body(ctx, store.Access{Account: "anna", Viewer: "anna"}, v.Info.ID, v.UIDs[0]); err != nil || len(body) == 0 {
		t.Fatalf("anna's first message: %q %v", body, err)
	}
	// The import memory went too: the same import files again.
	if ok, err := s.Import(ctx, store.Target{Account: "bo", Folder: "Old"}, []byte("import digest"), msg("imported"), time.Now()); err != nil || !ok {
		t.Fatalf("import after purge: %v %v", ok, err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// testImport: a message is filed once per digest and account, with its
// date and flags; another digest files again (the body stored once); a
// full account refuses with ErrQuota, files nothing and remembers nothing.
func testImport(t *testing.T, s Backend) {
	ctx := context.Background()
	date := time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)
	target := store.Target{Account: "anna", Folder: "Archive", Flags: []string{store.FlagSeen, "$Label1"}, Quota: 10000}
	body := msg("old")
	for i, want := range []bool{true, false} {
		if ok, err := s.Import(ctx, target, []byte("d1"), body, date); err != nil || ok != want {
			t.Fatalf("import %d: %v %v, want %v", i+1, ok, err, want)
		}
	}
	if ok, err := s.Import(ctx, store.Target{Account: "bo", Folder: "Archive"}, []byte("d1"), body, date); err != nil || !ok {
		t.Fatalf("the same digest for another account: %v %v", ok, err)
	}
	if ok, err := s.Import(ctx, target, []byte("d2"), body, date); err != nil || !ok {
		t.Fatalf("another digest: %v %v", ok, err)
	}
	acc := store.Access{Account: "anna", Viewer: "anna"}
	f, err := s.Folder(ctx, "anna", "Archive")
	if err != nil || f.Messages != 2 || f.Unseen != 0 {
		t.Fatalf("folder after imports: %+v %v", f, err)
	}
	err = s.Messages(ctx, acc, f.ID, nil, func(m *store.MessageInfo) error {
		if !m.InternalDate.Equal(date) || fmt.Sprint(m.Flags) != fmt.Sprint([]string{store.FlagSeen, "$Label1"}) {
			return fmt.Errorf("UID %d: date %v, flags %v", m.UID, m.InternalDate, m.Flags)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.BlobStats(); n != 1 {
		t.Fatalf("%d bodies, want 1", n)
	}

	big := make([]byte, 20000)
	if ok, err := s.Import(ctx, target, []byte("d3"), big, date); !errors.Is(err, store.ErrQuota) || ok {
		t.Fatalf("over quota: %v %v", ok, err)
	}
	if f, _ := s.Folder(ctx, "anna", "Archive"); f.Messages != 2 {
		t.Fatalf("%d messages after refusal", f.Messages)
	}
	target.Quota = 0
	if ok, err := s.Import(ctx, target, []byte("d3"), big, date); err != nil || !ok {
		t.Fatalf("refused message imported later: %v %v", ok, err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// testImportConcurrently: runs of one import at the same time file each
// message once.
func testImportConcurrently(t *testing.T, s Backend) {
	ctx := context.Background()
	const runs = 8
	var wg sync.WaitGroup
	filed := make(chan bool, runs)
	for range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Import(ctx, store.Target{Account: "anna", Folder: "INBOX"}, []byte("same"), msg("once"), time.Now())
			if err != nil {
				t.Error(err)
			}
			filed <- ok
		}()
	}
	wg.Wait()
	close(filed)
	n := 0
	for ok := range filed {
		if ok {
			n++
		}
	}
	if f, err := s.Folder(ctx, "anna", "INBOX"); n != 1 || err != nil || f.Messages != 1 {
		t.Fatalf("%d runs filed, the folder holds %d messages (%v), want 1", n, f.Messages, err)
	}
}
