package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestRefreshMetaResumes: messages stored under an old Analyze get the new
// one's result; a run stopped after its first batch leaves a mark, and the
// next run (after a restart) continues from it without redoing the done
// messages; messages delivered meanwhile and folders without stale
// messages are left alone.
func TestRefreshMetaResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	open := func(version string, calls *atomic.Int64) *Store {
		s, err := Open(ctx, Options{Path: path, Analyze: func(b []byte) []byte {
			if calls != nil {
				calls.Add(1)
			}
			return []byte(version + ":" + fmt.Sprint(len(b)))
		}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	stale := func(meta []byte) bool { return !bytes.HasPrefix(meta, []byte("v2:")) }
	s := open("v1", nil)
	const n = 1000
	for i := range n {
		if _, err := s.Deliver(ctx, &Delivery{Body: msg(fmt.Sprint(i)), Targets: []Target{{Account: "info", Folder: "INBOX"}}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	var calls atomic.Int64
	s = open("v2", &calls)
	view, err := s.Select(ctx, Access{Account: "info", Viewer: "info"}, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	// One batch, as a run cut short by a restart leaves it.
	if done, err := s.refreshBatch(ctx, "info", view.Info.ID, "t", stale, 100); err != nil || done {
		t.Fatalf("first batch: done %v, %v", done, err)
	}
	if c := calls.Load(); c != 100 {
		t.Fatalf("first batch analyzed %d messages, want 100", c)
	}
	deliver(t, s, msg("new"), "info") // analyzed at delivery: 101 calls
	s.Close()

	calls.Store(0)
	s = open("v2", &calls)
	defer s.Close()
	if err := s.RefreshMeta(ctx, "t", stale, 64); err != nil {
		t.Fatal(err)
	}
	if c := calls.Load(); c != n-100 {
		t.Fatalf("the second run analyzed %d messages, want the %d left", c, n-100)
	}
	left := 0
	err = s.Messages(ctx, Access{Account: "info", Viewer: "info"}, view.Info.ID, append(view.UIDs, view.Info.UIDNext), func(m *MessageInfo) error {
		if stale(m.Meta) {
			left++
		}
		return nil
	})
	if err != nil || left != 0 {
		t.Fatalf("%d messages still stale, %v", left, err)
	}
	// Done: a further run reads the marks and writes nothing.
	calls.Store(0)
	if err := s.RefreshMeta(ctx, "t", stale, 64); err != nil || calls.Load() != 0 {
		t.Fatalf("third run analyzed %d, %v", calls.Load(), err)
	}
}

// TestRefreshMetaAddsSearchData: bodies stored without search data (before
// Options.SearchData) get it once per body, however many copies, while
// meta that is not stale is left alone; the last copy takes it along.
func TestRefreshMetaAddsSearchData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	s, err := Open(ctx, Options{Path: path, Analyze: func(b []byte) []byte { return []byte("meta") }})
	if err != nil {
		t.Fatal(err)
	}
	const bodies = 10
	for i := range 3 * bodies {
		folder := []string{"INBOX", "Archive"}[i%2]
		d := &Delivery{Body: msg(fmt.Sprint(i % bodies)), Targets: []Target{{Account: "info", Folder: folder}, {Account: "bo", Folder: "INBOX"}}}
		if _, err := s.Deliver(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	var analyzed, searched atomic.Int64
	s, err = Open(ctx, Options{Path: path,
		Analyze:    func(b []byte) []byte { analyzed.Add(1); return []byte("meta") },
		SearchData: func(b []byte) []byte { searched.Add(1); return []byte(fmt.Sprint(len(b))) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _, err := s.SearchDataStats(); err != nil || n != 0 {
		t.Fatalf("before: %d bodies with search data, %v", n, err)
	}
	stale := func(meta []byte) bool { return string(meta) != "meta" }
	if err := s.RefreshMeta(ctx, "t", stale, 4); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.SearchDataStats(); err != nil || n != bodies || searched.Load() != bodies || analyzed.Load() != 0 {
		t.Fatalf("%d bodies with search data (%v), %d computed, %d analysed; want %d, %d, 0",
			n, err, searched.Load(), analyzed.Load(), bodies, bodies)
	}
	acc := Access{Account: "bo", Viewer: "bo"}
	view, err := s.Select(ctx, acc, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	err = s.MessagesInPlace(ctx, acc, view.Info.ID, view.UIDs, func(m *MessageInfo) error {
		if len(m.SearchData) == 0 {
			t.Errorf("message %d: no search data", m.UID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"info", "bo"} {
		if err := s.PurgeAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, err := s.SearchDataStats(); err != nil || n != 0 {
		t.Fatalf("after the last copies: %d bodies with search data, %v", n, err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSearchDataForOldRecords: a body stored before search data that is
// delivered again gets search data, and the older copy's record, which
// has no search id yet, finds it through the body's reference entry; the
// refresh then writes the id into that record.
func TestSearchDataForOldRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	body := msg("old")
	deliver(t, s, body, "anna")
	s.Close()

	s, err = Open(ctx, Options{Path: path, SearchData: func(b []byte) []byte { return []byte("search data") }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deliver(t, s, body, "bo")
	inPlace := func(account string) (data string, searchID uint64) {
		t.Helper()
		acc := Access{Account: account, Viewer: account}
		view, err := s.Select(ctx, acc, "INBOX", false)
		if err != nil {
			t.Fatal(err)
		}
		err = s.MessagesInPlace(ctx, acc, view.Info.ID, view.UIDs, func(m *MessageInfo) error {
			data = string(m.SearchData)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.view(ctx, func(tx *bolt.Tx) error {
			a, _ := getAccount(tx, account, false)
			var rec messageRecord
			if err := decodeMessage(a.messages(view.Info.ID).Get(u32(view.UIDs[0])), &rec, false); err != nil {
				return err
			}
			searchID = rec.searchID
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return data, searchID
	}
	if data, id := inPlace("bo"); data != "search data" || id == 0 {
		t.Fatalf("new copy: search data %q, id %d", data, id)
	}
	if data, id := inPlace("anna"); data != "search data" || id != 0 {
		t.Fatalf("old copy before the refresh: search data %q, id %d", data, id)
	}
	if err := s.RefreshMeta(ctx, "t", func([]byte) bool { return false }, 10); err != nil {
		t.Fatal(err)
	}
	_, want := inPlace("bo")
	if data, id := inPlace("anna"); data != "search data" || id != want {
		t.Fatalf("old copy after the refresh: search data %q, id %d, want %d", data, id, want)
	}
	if n, _, err := s.SearchDataStats(); err != nil || n != 1 {
		t.Fatalf("%d entries of search data, %v", n, err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
