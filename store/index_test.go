package store

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// scanState is what SELECT answers, found the slow way: every message read
// through Messages as the viewer sees it.
type scanState struct {
	uids        []UID
	unseen      uint32
	firstUnseen UID
	keywords    []string
	recent      uint32
}

func scanFolder(t *testing.T, s *Store, acc Access, name string) scanState {
	t.Helper()
	ctx := context.Background()
	info, err := s.Folder(ctx, acc.Account, name)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]UID, 0, info.UIDNext)
	for uid := UID(1); uid < info.UIDNext; uid++ {
		all = append(all, uid)
	}
	var st scanState
	keywords := map[string]bool{}
	err = s.Messages(ctx, acc, info.ID, all, func(m *MessageInfo) error {
		st.uids = append(st.uids, m.UID)
		if m.UID >= info.RecentFrom {
			st.recent++
		}
		if !slices.Contains(m.Flags, FlagSeen) {
			st.unseen++
			if st.firstUnseen == 0 {
				st.firstUnseen = m.UID
			}
		}
		for _, f := range m.Flags {
			if f[0] != '\\' {
				keywords[f] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.keywords = slices.Sorted(maps.Keys(keywords))
	if len(st.keywords) > MaxFolderKeywords {
		st.keywords = st.keywords[:MaxFolderKeywords]
	}
	return st
}

// checkSelect compares Select and Status with the scan for each access.
func checkSelect(t *testing.T, s *Store, name string, accs ...Access) {
	t.Helper()
	ctx := context.Background()
	for _, acc := range accs {
		want := scanFolder(t, s, acc, name)
		view, err := s.Select(ctx, acc, name, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(view.UIDs, want.uids) {
			t.Errorf("%s/%s: Select has %d UIDs, the scan %d", acc.Viewer, name, len(view.UIDs), len(want.uids))
		}
		if view.Unseen != want.unseen || view.FirstUnseen != want.firstUnseen {
			t.Errorf("%s/%s: Select unseen %d first %d, the scan %d first %d", acc.Viewer, name, view.Unseen, view.FirstUnseen, want.unseen, want.firstUnseen)
		}
		if !slices.Equal(view.Keywords, want.keywords) {
			t.Errorf("%s/%s: Select keywords %v, the scan %v", acc.Viewer, name, view.Keywords, want.keywords)
		}
		st, err := s.Status(ctx, acc, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Messages != uint32(len(want.uids)) || st.Unseen != want.unseen || st.Recent != want.recent {
			t.Errorf("%s/%s: Status messages %d unseen %d recent %d, the scan %d %d %d", acc.Viewer, name,
				st.Messages, st.Unseen, st.Recent, len(want.uids), want.unseen, want.recent)
		}
	}
}

// TestSelectIndexMatchesScan: the folder index answers SELECT and STATUS
// as reading every message would, through deliveries across several
// bitmap chunks, flag and keyword changes, per-user \Seen, copies, moves
// and expunges (a whole chunk among them), and after the index is lost
// and rebuilt when the store opens.
func TestSelectIndexMatchesScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	s := openAt(t, path)
	const n = 3*uidChunk + 100
	d := &Delivery{Body: msg("bulk")}
	for i := range n {
		var flags []string
		if i%3 == 0 {
			flags = append(flags, FlagSeen)
		}
		if i%1000 == 5 {
			flags = append(flags, fmt.Sprintf("kw%d", i%7))
		}
		d.Targets = append(d.Targets, Target{Account: "info", Folder: "INBOX", Flags: flags})
	}
	if _, err := s.Deliver(ctx, d); err != nil {
		t.Fatal(err)
	}
	owner := Access{Account: "info", Viewer: "info"}
	anna := Access{Account: "info", Viewer: "anna", SeenPerUser: true}
	bo := Access{Account: "info", Viewer: "bo", SeenPerUser: true}
	accs := []Access{owner, anna, bo}
	checkSelect(t, s, "INBOX", accs...)

	view, _ := s.Select(ctx, owner, "INBOX", true)
	id := view.Info.ID
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The first message unseen by all becomes seen; others lose \Seen.
	must(s.StoreFlags(ctx, owner, id, []UID{2, 3}, FlagsAdd, []string{FlagSeen, "$Important"}))
	must(s.StoreFlags(ctx, owner, id, []UID{1, 4, 7, 5000}, FlagsRemove, []string{FlagSeen}))
	// A keyword removed from its only message leaves the folder's list.
	must(s.StoreFlags(ctx, owner, id, []UID{6}, FlagsRemove, []string{"kw5"}))
	must(s.StoreFlags(ctx, owner, id, []UID{8}, FlagsSet, []string{FlagDeleted, "Zeta"}))
	// Own \Seen both ways, before and after the shared first unseen.
	must(s.StoreFlags(ctx, anna, id, []UID{1, 2, 4, 5, 9000}, FlagsAdd, []string{FlagSeen}))
	must(s.StoreFlags(ctx, anna, id, []UID{3, 10, 12000}, FlagsRemove, []string{FlagSeen}))
	checkSelect(t, s, "INBOX", accs...)

	// Expunge: a whole chunk, scattered messages, one with own \Seen.
	var doomed []UID
	for uid := UID(uidChunk); uid < 2*uidChunk; uid++ {
		doomed = append(doomed, uid)
	}
	doomed = append(doomed, 2*uidChunk+1, 2*uidChunk+3, 9000)
	must(s.StoreFlags(ctx, owner, id, doomed, FlagsAdd, []string{FlagDeleted}))
	must(s.Expunge(ctx, owner, id, nil))
	checkSelect(t, s, "INBOX", accs...)

	// Copies and moves carry flags into another folder and out of this.
	must(nil, s.CreateFolder(ctx, "info", FolderSpec{Name: "Archive"}))
	must(s.Copy(ctx, owner, id, []UID{1, 2, 3, 4, 5, 6}, owner, "Archive", 0, false))
	must(s.Copy(ctx, anna, id, []UID{9, 10, 11}, owner, "Archive", 0, true))
	checkSelect(t, s, "INBOX", accs...)
	checkSelect(t, s, "Archive", accs...)
	// Deleting a folder takes its index; a new one of the same name starts empty.
	must(nil, s.DeleteFolder(ctx, "info", "Archive"))
	must(nil, s.CreateFolder(ctx, "info", FolderSpec{Name: "Archive"}))
	checkSelect(t, s, "Archive", accs...)

	// Lose the index and mark the folder as written before it existed:
	// Open builds it again.
	err := s.db.Update(func(tx *bolt.Tx) error {
		a, f, err := openFolderID(tx, "info", id)
		if err != nil {
			return err
		}
		if err := a.b.DeleteBucket(indexBucketKey(id)); err != nil {
			return err
		}
		f.indexed = false
		return a.putFolder(id, &f)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Select(ctx, owner, "INBOX", false); err == nil {
		t.Fatal("Select of a folder without index succeeded")
	}
	s.Close()
	s = openAt(t, path)
	checkSelect(t, s, "INBOX", accs...)
	// And it is kept up to date again.
	must(s.StoreFlags(ctx, owner, id, []UID{2}, FlagsRemove, []string{FlagSeen, "$Important"}))
	deliver(t, s, msg("after"), "info")
	checkSelect(t, s, "INBOX", accs...)
}
