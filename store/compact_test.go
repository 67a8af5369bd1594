package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// openAt opens the store at path; the caller closes it.
func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Path: path, SearchData: func(b []byte) []byte { return []byte(fmt.Sprint(len(b))) }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCompact: after most mail is deleted the file shrinks, and what was
// kept is all there; search data ids go on where they were, so a new body
// takes no kept body's search data.
func TestCompact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	s := openAt(t, path)
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for i := range 100 {
		deliver(t, s, append([]byte(fmt.Sprintf("Subject: %d\r\n\r\n", i)), big...), "anna")
	}
	acc := Access{Account: "anna", Viewer: "anna"}
	view, err := s.Select(ctx, acc, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	// The first message stays: its body has the first search data id.
	if _, err := s.StoreFlags(ctx, acc, view.Info.ID, view.UIDs[1:96], FlagsAdd, []string{FlagDeleted}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, acc, view.Info.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Compact(ctx, path); !errors.Is(err, ErrInUse) {
		t.Fatalf("compact of an open store: %v, want ErrInUse", err)
	}
	s.Close()

	before, after, err := Compact(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before/4 {
		t.Fatalf("compacted from %d to %d bytes", before, after)
	}
	s = openAt(t, path)
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	view, err = s.Select(ctx, acc, "INBOX", false)
	if err != nil || len(view.UIDs) != 5 || view.UIDs[0] != 1 || view.UIDs[1] != 97 {
		t.Fatalf("after compaction: %v %v", view.UIDs, err)
	}
	body, err := s.Body(ctx, acc, view.Info.ID, 100)
	if err != nil || !bytes.Contains(body, []byte("Subject: 99\r\n")) || !bytes.HasSuffix(body, big) {
		t.Fatalf("message 100 after compaction: %d bytes, %v", len(body), err)
	}
	// The store goes on as before: a new message gets the next UID.
	deliver(t, s, []byte("Subject: after\r\n\r\nx\r\n"), "anna")
	if view, _ = s.Select(ctx, acc, "INBOX", false); view.UIDs[len(view.UIDs)-1] != 101 {
		t.Fatalf("UIDs after compaction %v", view.UIDs)
	}
	if n, _, err := s.SearchDataStats(); err != nil || n != 6 {
		t.Fatalf("%d bodies with search data after compaction and one more delivery, want 6 (%v)", n, err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenWaitsForCompaction: a store held by another opener (a running
// server, or Compact) is refused with ErrInUse after the timeout.
func TestOpenWaitsForCompaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	s := openAt(t, path)
	defer s.Close()
	start := time.Now()
	if _, err := Open(ctx, Options{Path: path, Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrInUse) || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("second open: %v after %v", err, time.Since(start))
	}
}

// TestCompactWithoutGain: a store with no free space is left as it was.
func TestCompactWithoutGain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	s := openAt(t, path)
	deliver(t, s, []byte("Subject: one\r\n\r\nx\r\n"), "anna")
	s.Close()
	before, after, err := Compact(ctx, path)
	if err != nil || before != after {
		t.Fatalf("compact: %d -> %d, %v", before, after, err)
	}
	if matches, _ := filepath.Glob(path + ".compact"); len(matches) != 0 {
		t.Fatalf("copy left behind: %v", matches)
	}
}
