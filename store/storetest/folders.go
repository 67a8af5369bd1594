package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

func folderNames(t *testing.T, s Backend, account string) []string {
	t.Helper()
	folders, err := s.Folders(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range folders {
		names = append(names, f.Name)
	}
	return names
}

func testCopyMoveAndFolders(t *testing.T, s Backend) {
	ctx := context.Background()
	created, err := s.EnsureFolders(ctx, "anna", []store.FolderSpec{{Name: "INBOX"}, {Name: "Archive", SpecialUse: `\Archive`}})
	if err != nil || !slices.Equal(created, []string{"INBOX", "Archive"}) {
		t.Fatalf("ensure %v %v", created, err)
	}
	if created, err := s.EnsureFolders(ctx, "anna", []store.FolderSpec{{Name: "INBOX"}, {Name: "Archive"}}); err != nil || len(created) != 0 {
		t.Fatalf("second ensure %v %v", created, err)
	}
	deliver(t, s, msg("a"), "anna")
	deliver(t, s, msg("b"), "anna")
	acc := store.Access{Account: "anna", Viewer: "anna"}
	in := inbox(t, s, "anna")
	archive, _ := s.Folder(ctx, "anna", "Archive")
	if archive.SpecialUse != `\Archive` || archive.UIDValidity == in.UIDValidity {
		t.Fatalf("archive %+v, inbox %+v", archive, in)
	}
	rec := record(s)
	res, err := s.Copy(ctx, acc, in.ID, []store.UID{1, 2}, acc, "Archive", 0, true)
	if err != nil || !slices.Equal(res.Dest, []store.UID{1, 2}) || !slices.Equal(res.Source, []store.UID{1, 2}) || res.UIDValidity != archive.UIDValidity {
		t.Fatalf("move %+v %v", res, err)
	}
	if c := rec.all(); len(c) != 2 || c[0].Kind != store.ChangeNew || c[0].FolderID != archive.ID || c[1].Kind != store.ChangeExpunge || c[1].FolderID != in.ID {
		t.Fatalf("move changes %+v", c)
	}
	if st, _ := s.Folder(ctx, "anna", "INBOX"); st.Messages != 0 || st.Size != 0 {
		t.Fatalf("inbox after move %+v", st)
	}
	if u, _ := s.Usage(ctx, "anna"); u != int64(len(msg("a"))+len(msg("b"))+2*len("Delivered-To: anna@x\r\n")) {
		t.Fatalf("usage after a move %d", u)
	}
	if err := s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "Archive/2026"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "Archived"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameFolder(ctx, "anna", "Archive", "Old", "/"); err != nil {
		t.Fatal(err)
	}
	if names := folderNames(t, s, "anna"); !slices.Equal(names, []string{"Archived", "INBOX", "Old", "Old/2026"}) {
		t.Fatalf("folders %v", names)
	}
	if old, _ := s.Folder(ctx, "anna", "Old"); old.ID != archive.ID || old.UIDValidity != archive.UIDValidity || old.Messages != 2 {
		t.Fatalf("renamed folder %+v, was %+v", old, archive)
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

// testCopyRules: copies across accounts share bodies and keep flags; the
// destination's quota refuses the whole copy; a folder cannot take its own.
func testCopyRules(t *testing.T, s Backend) {
	ctx := context.Background()
	deliver(t, s, msg("a"), "anna")
	deliver(t, s, msg("b"), "anna")
	s.EnsureFolders(ctx, "bo", []store.FolderSpec{{Name: "INBOX"}})
	anna := store.Access{Account: "anna", Viewer: "anna"}
	bo := store.Access{Account: "bo", Viewer: "bo"}
	id := inbox(t, s, "anna").ID
	s.StoreFlags(ctx, anna, id, []store.UID{2}, store.FlagsAdd, []string{store.FlagFlagged, "$Work"})
	if _, err := s.Copy(ctx, anna, id, []store.UID{1, 2}, bo, "INBOX", 10, false); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("copy over quota: %v", err)
	}
	if f, _ := s.Folder(ctx, "bo", "INBOX"); f.Messages != 0 || f.UIDNext != 1 {
		t.Fatalf("refused copy left %+v", f)
	}
	res, err := s.Copy(ctx, anna, id, []store.UID{2, 7}, bo, "INBOX", 0, false)
	if err != nil || !slices.Equal(res.Source, []store.UID{2}) || !slices.Equal(res.Dest, []store.UID{1}) {
		t.Fatalf("copy %+v %v", res, err)
	}
	var flags []string
	s.Messages(ctx, bo, inbox(t, s, "bo").ID, res.Dest, func(m *store.MessageInfo) error { flags = m.Flags; return nil })
	if !slices.Equal(flags, []string{store.FlagFlagged, "$Work"}) {
		t.Fatalf("copied flags %v", flags)
	}
	if count, _, _ := s.BlobStats(); count != 2 {
		t.Fatalf("%d bodies after a copy, want 2", count)
	}
	// A copy into the folder itself is a new message with the next UID
	// (IMAP COPY into the selected mailbox).
	before, _ := s.Folder(ctx, "anna", "INBOX")
	self, err := s.Copy(ctx, anna, id, []store.UID{1}, anna, "INBOX", 0, false)
	if err != nil || !slices.Equal(self.Dest, []store.UID{before.UIDNext}) {
		t.Fatalf("copy into itself: %+v %v (UIDNEXT was %d)", self, err, before.UIDNext)
	}
	if after, _ := s.Folder(ctx, "anna", "INBOX"); after.Messages != before.Messages+1 || after.UIDNext != before.UIDNext+1 {
		t.Fatalf("copy into itself: folder %+v, before %+v", after, before)
	}
	if _, err := s.Copy(ctx, anna, id, []store.UID{1}, bo, "Nowhere", 0, false); !errors.Is(err, store.ErrNoFolder) {
		t.Fatalf("copy into a missing folder: %v", err)
	}
	if _, err := s.Copy(ctx, anna, id, []store.UID{1}, store.Access{Account: "bo", ReadOnly: true}, "INBOX", 0, false); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("copy into a read-only mailbox: %v", err)
	}
	// Expunging anna's copy leaves bo's body in place.
	s.StoreFlags(ctx, anna, id, []store.UID{1, 2}, store.FlagsAdd, []string{store.FlagDeleted})
	s.Expunge(ctx, anna, id, nil)
	body, err := s.Body(ctx, bo, inbox(t, s, "bo").ID, 1)
	if err != nil || string(body) != "Delivered-To: anna@x\r\n"+string(msg("b")) {
		t.Fatalf("body of the copy %q %v", body, err)
	}
}

// testFolderRules: the errors of folder operations.
func testFolderRules(t *testing.T, s Backend) {
	ctx := context.Background()
	s.EnsureFolders(ctx, "anna", []store.FolderSpec{{Name: "INBOX"}, {Name: "A"}, {Name: "B"}})
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"create existing", s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "A"}), store.ErrFolderExists},
		{"create empty", s.CreateFolder(ctx, "anna", store.FolderSpec{}), store.ErrInvalid},
		{"create for no account", s.CreateFolder(ctx, "", store.FolderSpec{Name: "A"}), store.ErrInvalid},
		{"delete missing", s.DeleteFolder(ctx, "anna", "C"), store.ErrNoFolder},
		{"delete of missing account", s.DeleteFolder(ctx, "nobody", "A"), store.ErrNoFolder},
		{"rename missing", s.RenameFolder(ctx, "anna", "C", "D", "/"), store.ErrNoFolder},
		{"rename onto existing", s.RenameFolder(ctx, "anna", "A", "B", "/"), store.ErrFolderExists},
		{"rename to empty", s.RenameFolder(ctx, "anna", "A", "", "/"), store.ErrInvalid},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, err := s.Folder(ctx, "anna", "C"); !errors.Is(err, store.ErrNoFolder) {
		t.Errorf("missing folder: %v", err)
	}
	if _, err := s.Select(ctx, store.Access{Account: "nobody"}, "INBOX", true); !errors.Is(err, store.ErrNoFolder) {
		t.Errorf("select in a missing account: %v", err)
	}
	if f, err := s.Folders(ctx, "nobody"); err != nil || len(f) != 0 {
		t.Errorf("folders of a missing account: %v %v", f, err)
	}
	_, err := s.Deliver(ctx, &store.Delivery{Body: msg("x"), Targets: []store.Target{{Account: "anna", Folder: "Nope", NoCreate: true}}})
	if !errors.Is(err, store.ErrNoFolder) {
		t.Errorf("delivery to a missing folder with NoCreate: %v", err)
	}
	if _, err := s.Append(ctx, store.Access{Account: "anna"}, "Nope", msg("x"), nil, time.Now(), 0); !errors.Is(err, store.ErrNoFolder) {
		t.Errorf("append to a missing folder: %v", err)
	}
	if _, err := s.Append(ctx, store.Access{Account: "anna", ReadOnly: true}, "A", msg("x"), nil, time.Now(), 0); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("read-only append: %v", err)
	}
	// A delivery creates a missing folder, with its special use.
	res, err := s.Deliver(ctx, &store.Delivery{Body: msg("x"), Targets: []store.Target{{Account: "anna", Folder: "Junk", SpecialUse: `\Junk`}}})
	if err != nil || res.Targets[0].UID != 1 {
		t.Fatalf("delivery creating a folder %+v %v", res, err)
	}
	if f, _ := s.Folder(ctx, "anna", "Junk"); f.SpecialUse != `\Junk` || f.Messages != 1 {
		t.Fatalf("created folder %+v", f)
	}
	// A deleted and recreated folder has a new UIDVALIDITY.
	before, _ := s.Folder(ctx, "anna", "Junk")
	s.DeleteFolder(ctx, "anna", "Junk")
	s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "Junk"})
	if after, _ := s.Folder(ctx, "anna", "Junk"); after.UIDValidity == before.UIDValidity || after.ID == before.ID || after.UIDNext != 1 {
		t.Fatalf("recreated %+v, was %+v", after, before)
	}
}

func testConcurrentDeliveries(t *testing.T, s Backend) {
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tryDeliver(s, msg(fmt.Sprint(i)), "anna", fmt.Sprintf("u%d", i%4)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	view, err := s.Select(context.Background(), store.Access{Account: "anna"}, "INBOX", false)
	if err != nil || len(view.UIDs) != 64 || view.UIDs[63] != 64 || view.Info.UIDNext != 65 {
		t.Fatalf("view %d uids, err %v", len(view.UIDs), err)
	}
}

func testFailingWriteDoesNotSinkOthers(t *testing.T, s Backend) {
	ctx := context.Background()
	deliver(t, s, msg("x"), "anna")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs[i] = s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "INBOX"}) // exists: fails
			} else {
				errs[i] = s.CreateFolder(ctx, "anna", store.FolderSpec{Name: fmt.Sprint("f", i)})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && !errors.Is(err, store.ErrFolderExists) || i%2 == 1 && err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if names := folderNames(t, s, "anna"); len(names) != 11 {
		t.Fatalf("%d folders", len(names))
	}
}

func testMessagesAndBodies(t *testing.T, s Backend) {
	ctx := context.Background()
	date := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	body := msg("dated")
	acc := store.Access{Account: "anna", Viewer: "anna"}
	s.EnsureFolders(ctx, "anna", []store.FolderSpec{{Name: "INBOX"}})
	r, err := s.Append(ctx, acc, "INBOX", body, []string{store.FlagDraft, "$x", `\Recent`, "$X"}, date, 0)
	if err != nil || r.UID != 1 {
		t.Fatalf("append %+v %v", r, err)
	}
	id := inbox(t, s, "anna").ID
	var got []store.MessageInfo
	err = s.Messages(ctx, acc, id, []store.UID{1, 2}, func(m *store.MessageInfo) error {
		got = append(got, *m)
		return nil
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("messages %+v %v", got, err)
	}
	m := got[0]
	if !m.InternalDate.Equal(date) || m.Size != int64(len(body)) || string(m.Meta) != string(Analyze(body)) || !slices.Equal(m.Flags, []string{store.FlagDraft, "$x"}) {
		t.Fatalf("message %+v", m)
	}
	if b, err := s.Body(ctx, acc, id, 1); err != nil || string(b) != string(body) {
		t.Fatalf("body %q %v", b, err)
	}
	if _, err := s.Body(ctx, acc, id, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing body: %v", err)
	}
	if _, err := s.Body(ctx, acc, id+100, 1); !errors.Is(err, store.ErrNoFolder) {
		t.Fatalf("body in a missing folder: %v", err)
	}
	if err := s.Messages(ctx, acc, id+100, []store.UID{1}, func(*store.MessageInfo) error { return nil }); !errors.Is(err, store.ErrNoFolder) {
		t.Fatalf("messages of a missing folder: %v", err)
	}
	// More messages than one read takes, in order.
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 110 {
				if _, err := tryDeliver(s, msg(fmt.Sprint(w, i)), "anna"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	view, _ := s.Select(ctx, acc, "INBOX", false)
	var uids []store.UID
	s.Messages(ctx, acc, id, view.UIDs, func(m *store.MessageInfo) error { uids = append(uids, m.UID); return nil })
	if !slices.Equal(uids, view.UIDs) || len(uids) != 1101 {
		t.Fatalf("%d messages read", len(uids))
	}
	// Replacing the flags, and removing some.
	s.StoreFlags(ctx, acc, id, []store.UID{1}, store.FlagsSet, []string{store.FlagAnswered, "$a", "$b"})
	out, err := s.StoreFlags(ctx, acc, id, []store.UID{1}, store.FlagsRemove, []string{"$A"})
	if err != nil || !slices.Equal(out[0].Flags, []string{store.FlagAnswered, "$b"}) {
		t.Fatalf("flags %+v %v", out, err)
	}
	if _, err := s.StoreFlags(ctx, store.Access{Account: "anna", ReadOnly: true}, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagSeen}); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("read-only store: %v", err)
	}
	if _, err := s.Expunge(ctx, store.Access{Account: "anna", ReadOnly: true}, id, nil); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("read-only expunge: %v", err)
	}
}

// testManyBodies: Bodies gives each existing message's text, the same as
// Body, in UID order, leaving out expunged ones; a missing folder is
// ErrNoFolder.
func testManyBodies(t *testing.T, s Backend) {
	ctx := context.Background()
	acc := store.Access{Account: "anna", Viewer: "anna"}
	for i := range 6 {
		deliver(t, s, msg(strings.Repeat(fmt.Sprint(i), 10*i+1)), "anna")
	}
	id := inbox(t, s, "anna").ID
	if _, err := s.StoreFlags(ctx, acc, id, []store.UID{2, 5}, store.FlagsAdd, []string{store.FlagDeleted}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, acc, id, []store.UID{2, 5}); err != nil {
		t.Fatal(err)
	}
	var got []store.UID
	err := s.Bodies(ctx, acc, id, []store.UID{1, 2, 3, 4, 5, 6, 9}, func(uid store.UID, body []byte) error {
		want, err := s.Body(ctx, acc, id, uid)
		if err != nil || string(body) != string(want) {
			t.Fatalf("UID %d: %q, Body gives %q (%v)", uid, body, want, err)
		}
		got = append(got, uid)
		return nil
	})
	if err != nil || !slices.Equal(got, []store.UID{1, 3, 4, 6}) {
		t.Fatalf("Bodies gave UIDs %v: %v", got, err)
	}
	stop := errors.New("enough")
	if err := s.Bodies(ctx, acc, id, []store.UID{1, 3}, func(store.UID, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
	if err := s.Bodies(ctx, acc, id+100, []store.UID{1}, func(store.UID, []byte) error { return nil }); !errors.Is(err, store.ErrNoFolder) {
		t.Fatalf("bodies of a missing folder: %v", err)
	}
}

// testSelectKeywords: Select lists the keywords on the folder's messages,
// sorted and bounded.
func testSelectKeywords(t *testing.T, s Backend) {
	ctx := context.Background()
	for i := range 3 {
		deliver(t, s, msg(fmt.Sprint(i)), "anna")
	}
	acc := store.Access{Account: "anna", Viewer: "anna"}
	view, err := s.Select(ctx, acc, "INBOX", false)
	if err != nil || len(view.Keywords) != 0 {
		t.Fatalf("keywords of a fresh folder %v %v", view.Keywords, err)
	}
	s.StoreFlags(ctx, acc, view.Info.ID, []store.UID{1}, store.FlagsAdd, []string{"zeta", store.FlagSeen})
	s.StoreFlags(ctx, acc, view.Info.ID, []store.UID{3}, store.FlagsAdd, []string{"$Label1", "zeta"})
	if view, _ = s.Select(ctx, acc, "INBOX", false); !slices.Equal(view.Keywords, []string{"$Label1", "zeta"}) {
		t.Fatalf("keywords %v", view.Keywords)
	}
	var many []string
	for i := range store.MaxFolderKeywords + 20 {
		many = append(many, fmt.Sprintf("k%03d", i))
	}
	s.StoreFlags(ctx, acc, view.Info.ID, []store.UID{2}, store.FlagsAdd, many)
	if view, _ = s.Select(ctx, acc, "INBOX", false); len(view.Keywords) != store.MaxFolderKeywords {
		t.Fatalf("%d keywords listed, want the bound %d", len(view.Keywords), store.MaxFolderKeywords)
	}
}

func testSubscriptions(t *testing.T, s Backend) {
	ctx := context.Background()
	if m, err := s.Subscriptions(ctx, "anna", "info"); err != nil || len(m) != 0 {
		t.Fatalf("fresh %v %v", m, err)
	}
	s.SetSubscribed(ctx, "anna", "info", "INBOX", true)
	s.SetSubscribed(ctx, "anna", "info", "Old", true)
	s.SetSubscribed(ctx, "anna", "info", "Old", false)
	s.SetSubscribed(ctx, "bo", "info", "INBOX", true)
	s.SetSubscribed(ctx, "anna", "infox", "INBOX", true)
	m, err := s.Subscriptions(ctx, "anna", "info")
	if err != nil || len(m) != 2 || !m["INBOX"] || m["Old"] {
		t.Fatalf("subscriptions %v %v", m, err)
	}
}

// testFailingDeliveriesDoNotSinkOthers: deliveries that fail (a missing
// folder, an empty account id) among concurrent ones fail alone, whichever
// deliveries a backend commits together.
func testFailingDeliveriesDoNotSinkOthers(t *testing.T, s Backend) {
	ctx := context.Background()
	deliver(t, s, msg("first"), "anna")
	var wg sync.WaitGroup
	errs := make([]error, 60)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := store.Target{Account: "anna", Folder: "INBOX"}
			switch i % 3 {
			case 1:
				t.Folder, t.NoCreate = "Missing", true
			case 2:
				t.Account = ""
			}
			_, errs[i] = s.Deliver(ctx, &store.Delivery{Body: msg(fmt.Sprint(i)), Targets: []store.Target{t}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		want := []error{nil, store.ErrNoFolder, store.ErrInvalid}[i%3]
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("delivery %d: %v, want %v", i, err, want)
		}
	}
	view, err := s.Select(ctx, store.Access{Account: "anna"}, "INBOX", false)
	if err != nil || len(view.UIDs) != 21 || view.UIDs[20] != 21 {
		t.Fatalf("INBOX after the deliveries: %v %v", view.UIDs, err)
	}
}
