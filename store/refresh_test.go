package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
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
