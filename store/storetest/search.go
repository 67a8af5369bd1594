package storetest

import (
	"context"
	"fmt"
	"testing"

	"postkasse.dev/postkasse/store"
)

// SearchData is the search-data maker the backends under test must be
// opened with (Options.SearchData): the suite checks that its result is
// stored once per body and goes with the body's last copy.
func SearchData(body []byte) []byte { return []byte(fmt.Sprintf("search of %d bytes", len(body))) }

// testSearchDataOncePerBody: a body delivered to many mailboxes, copied
// and delivered again has its search data stored once; MessagesInPlace
// hands it to every copy (Messages does not), and it goes when the last
// copy goes, whether by expunge, folder deletion or account purge.
func testSearchDataOncePerBody(t *testing.T, s Backend) {
	ctx := context.Background()
	var accounts []string
	for i := range 20 {
		accounts = append(accounts, fmt.Sprintf("u%d", i))
	}
	body := msg("searched")
	want := SearchData(body)
	deliver(t, s, body, accounts...)
	deliver(t, s, body, "u1") // the same body again
	other := msg("another")
	deliver(t, s, other, "u2")
	checkSearchStats(t, s, 2, len(want)+len(SearchData(other)))

	u3 := store.Access{Account: "u3", Viewer: "u3"}
	id := inbox(t, s, "u3").ID
	if _, err := s.Copy(ctx, u3, id, []store.UID{1}, u3, "Archive", 0, false); err == nil {
		t.Fatal("copy to a missing folder succeeded")
	}
	if err := s.CreateFolder(ctx, "u3", store.FolderSpec{Name: "Archive"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx, u3, id, []store.UID{1}, u3, "Archive", 0, false); err != nil {
		t.Fatal(err)
	}
	checkSearchStats(t, s, 2, len(want)+len(SearchData(other)))
	var inPlace, copied []string
	err := s.MessagesInPlace(ctx, u3, id, []store.UID{1}, func(info *store.MessageInfo) error {
		inPlace = append(inPlace, string(info.SearchData))
		if string(info.Meta) != string(Analyze(body)) {
			t.Errorf("in place: meta %q, want %q", info.Meta, Analyze(body))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Messages(ctx, u3, id, []store.UID{1}, func(info *store.MessageInfo) error {
		copied = append(copied, string(info.SearchData))
		return nil
	})
	if err != nil || len(inPlace) != 1 || inPlace[0] != string(want) || len(copied) != 1 || copied[0] != "" {
		t.Fatalf("search data in place %q, copied %q, want %q and none; %v", inPlace, copied, want, err)
	}

	// Every copy but u3's INBOX's goes: u2's with its account, the others
	// by expunge and with u3's Archive folder.
	if err := s.PurgeAccount(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	checkSearchStats(t, s, 1, len(want))
	for _, a := range accounts {
		if a == "u2" || a == "u3" {
			continue
		}
		acc := store.Access{Account: a, Viewer: a}
		aid := inbox(t, s, a).ID
		view, _ := s.Select(ctx, acc, "INBOX", false)
		if _, err := s.StoreFlags(ctx, acc, aid, view.UIDs, store.FlagsAdd, []string{store.FlagDeleted}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Expunge(ctx, acc, aid, nil); err != nil {
			t.Fatal(err)
		}
	}
	checkSearchStats(t, s, 1, len(want))
	if err := s.DeleteFolder(ctx, "u3", "Archive"); err != nil {
		t.Fatal(err)
	}
	checkSearchStats(t, s, 1, len(want))
	if _, err := s.StoreFlags(ctx, u3, id, []store.UID{1}, store.FlagsAdd, []string{store.FlagDeleted}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, u3, id, nil); err != nil {
		t.Fatal(err)
	}
	checkSearchStats(t, s, 0, 0)
	if n, _, _ := s.BlobStats(); n != 0 {
		t.Fatalf("%d bodies left", n)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func checkSearchStats(t *testing.T, s Backend, count, bytes int) {
	t.Helper()
	n, b, err := s.SearchDataStats()
	if err != nil || n != count || b != int64(bytes) {
		t.Fatalf("search data: %d entries of %d bytes in all (%v), want %d of %d", n, b, err, count, bytes)
	}
}
