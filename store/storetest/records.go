package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// Fill puts into s one or more of everything a store keeps, through its
// own methods: messages in several folders with gaps in their UIDs, flags,
// keywords, a \Recent claim, per-user \Seen, subscriptions, a queued
// message after an attempt, automatic-reply and connected-account
// memories, an import digest, address books with a tombstone and a cache
// entry. A copy of the store is then compared record by record.
func Fill(t *testing.T, s Backend) {
	t.Helper()
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	date := time.Date(2026, 12, 1, 9, 30, 0, 123456789, time.UTC)
	for i := range 4 {
		_, err := s.Deliver(ctx, &store.Delivery{Body: msg(fmt.Sprint("shared ", i)), Date: date, Targets: []store.Target{
			{Account: "anna", Folder: "INBOX", Prefix: []byte("Delivered-To: anna@x\r\n")},
			{Account: "info", Folder: "INBOX", Prefix: []byte("Delivered-To: info@x\r\n")},
		}})
		check(err)
	}
	_, err := s.Deliver(ctx, &store.Delivery{Body: msg("out"), Targets: []store.Target{{Account: "anna", Folder: "Sent", SpecialUse: `\Sent`}},
		Queue: []store.NewQueuedMessage{{From: "anna@x", Recipients: []string{"a@example.org", "b@example.org"}, Body: msg("out"), Kind: "forward"}}})
	check(err)
	annaIn := store.Access{Account: "anna", Viewer: "anna"}
	in := inbox(t, s, "anna")
	_, err = s.StoreFlags(ctx, annaIn, in.ID, []store.UID{1, 3}, store.FlagsAdd, []string{store.FlagSeen, store.FlagAnswered, "todo", "$Important"})
	check(err)
	_, err = s.Expunge(ctx, annaIn, in.ID, []store.UID{2})
	check(err)
	check(s.CreateFolder(ctx, "anna", store.FolderSpec{Name: "Projects/2026"}))
	_, err = s.Append(ctx, annaIn, "Projects/2026", msg("appended"), []string{store.FlagFlagged, "client-kw"}, date, 0)
	check(err)
	check(s.SetSubscribed(ctx, "anna", "anna", "Projects/2026", true))
	check(s.SetSubscribed(ctx, "bo", "info", "INBOX", false))
	_, err = s.Select(ctx, annaIn, "INBOX", true)
	check(err)
	// Per-user \Seen in the shared mailbox: bo's own, and carl's unset.
	info := inbox(t, s, "info")
	bo := store.Access{Account: "info", Viewer: "bo", SeenPerUser: true}
	_, err = s.StoreFlags(ctx, bo, info.ID, []store.UID{1, 2}, store.FlagsAdd, []string{store.FlagSeen})
	check(err)
	carl := store.Access{Account: "info", Viewer: "carl", SeenPerUser: true}
	_, err = s.StoreFlags(ctx, carl, info.ID, []store.UID{4}, store.FlagsRemove, []string{store.FlagSeen})
	check(err)
	// carl's own "not seen" of a message others see as read.
	_, err = s.StoreFlags(ctx, store.Access{Account: "info", Viewer: "info"}, info.ID, []store.UID{3}, store.FlagsAdd, []string{store.FlagSeen})
	check(err)
	_, err = s.StoreFlags(ctx, carl, info.ID, []store.UID{3}, store.FlagsRemove, []string{store.FlagSeen})
	check(err)
	fillMemories(t, s, date)
}

// fillMemories fills everything but the folders.
func fillMemories(t *testing.T, s Backend, date time.Time) {
	t.Helper()
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	queued, err := s.QueueList(ctx)
	check(err)
	if len(queued) != 1 {
		t.Fatalf("queue holds %d messages", len(queued))
	}
	m := queued[0]
	m.Attempts, m.LastError, m.NextAttempt = 2, "451 try later", date.Add(time.Hour)
	m.Recipients[0].State, m.Recipients[0].Reply = store.RecipientDelivered, "250 ok"
	check(s.QueueUpdate(ctx, m))
	_, err = s.NoteAutoReply(ctx, "anna", "Someone@Example.org", "away", date, time.Hour)
	check(err)
	key := "anna\x00imap.example.org\x00anna\x00INBOX"
	digest := sha256.Sum256([]byte("remote message"))
	_, err = s.DeliverRemote(ctx, key, store.RemoteState{UIDValidity: 77, LastUID: 9}, digest[:],
		&store.Delivery{Body: msg("remote"), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
	check(err)
	check(s.SaveRemoteProgress(ctx, "info\x00imap.example.org\x00info\x00INBOX", store.RemoteState{UIDValidity: 5, LastUID: 1}))
	imported := sha256.Sum256([]byte("imported"))
	_, err = s.Import(ctx, store.Target{Account: "info", Folder: "Archive"}, imported[:], msg("imported"), date)
	check(err)
	book := store.Book{Account: "anna", Name: "contacts"}
	_, _, err = s.PutCard(ctx, book, "a.vcf", []byte("BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"), "", date)
	check(err)
	_, _, err = s.PutCard(ctx, book, "b.vcf", []byte("BEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\n"), "", date)
	check(err)
	check(s.DeleteCard(ctx, book, "b.vcf", "", date.Add(time.Minute)))
	check(s.PutCacheEntry(ctx, "acme/account-key", []byte("secret key")))
}

// Diff lists the records only one of want and got has (both sorted, as
// Records gives them), or "" when they are the same.
func Diff(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			fmt.Fprintf(&b, "\n  missing %s", w)
		}
	}
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok {
			fmt.Fprintf(&b, "\n  extra   %s", g)
		}
	}
	if b.Len() == 0 && len(want) != len(got) {
		return fmt.Sprintf("\n  %d records, %d expected (duplicates)", len(got), len(want))
	}
	return b.String()
}

// Records collects what export hands out, each record in a canonical text
// (JSON, times in UTC, empty byte slices as none), sorted: two stores hold
// the same when their records are equal.
func Records(t *testing.T, export func(fn func(store.Record) error) error) []string {
	t.Helper()
	var out []string
	err := export(func(r store.Record) error {
		text, err := canonical(r)
		out = append(out, text)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func canonical(rec store.Record) (string, error) {
	out := rec
	switch r := rec.(type) {
	case *store.MessageRecord:
		c := *r
		c.Date = c.Date.UTC()
		c.Prefix, c.Meta = nilEmpty(c.Prefix), nilEmpty(c.Meta)
		if len(c.Flags) == 0 {
			c.Flags = nil
		}
		out = &c
	case *store.AutoReplyRecord:
		c := *r
		c.Last = c.Last.UTC()
		out = &c
	case *store.QueueRecord:
		c := *r
		c.Message.Created, c.Message.NextAttempt = c.Message.Created.UTC(), c.Message.NextAttempt.UTC()
		out = &c
	case *store.CardRecord:
		c := *r
		c.Card.Modified = c.Card.Modified.UTC()
		c.Card.Data = nilEmpty(c.Card.Data)
		out = &c
	}
	data, err := json.Marshal(out)
	return fmt.Sprintf("%T %s", out, data), err
}

func nilEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// Inconsistent is a store whose records contradict each other: a message
// at a UID its folder has not handed out yet. A loader must refuse to
// commit it.
func Inconsistent() []store.Record {
	body := msg("inconsistent")
	hash := sha256.Sum256(body)
	return []store.Record{
		&store.MetaRecord{LastUIDValidity: 1},
		&store.BodyRecord{Hash: hash, Body: body},
		&store.AccountRecord{ID: "anna", NextFolder: 2},
		&store.FolderRecord{Account: "anna", ID: 1, Name: "INBOX", UIDValidity: 1, UIDNext: 1, RecentFrom: 1},
		&store.MessageRecord{Account: "anna", Folder: 1, UID: 1, Size: int64(len(body)), Hash: hash},
	}
}

// FillOld delivers, to the account "old", a message whose body has no
// search data, as in a store from before search data: s must be opened
// without Options.SearchData. Fill, on the store opened again with
// SearchData, adds the rest.
func FillOld(t *testing.T, s Backend) {
	t.Helper()
	deliver(t, s, msg("from before search data"), "old")
}

// CheckSearchData checks the bodies an export hands out: every one
// carries SearchData's result for it, except exactly none bodies, which
// carry no search data (nil).
func CheckSearchData(t *testing.T, export func(fn func(store.Record) error) error, none int) {
	t.Helper()
	bodies, without := 0, 0
	err := export(func(r store.Record) error {
		b, ok := r.(*store.BodyRecord)
		if !ok {
			return nil
		}
		bodies++
		switch {
		case b.Search == nil:
			without++
		case !bytes.Equal(b.Search, SearchData(b.Body)):
			t.Errorf("body %x: search data %q, want %q", b.Hash[:6], b.Search, SearchData(b.Body))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if without != none || bodies <= none {
		t.Errorf("%d of %d bodies without search data, want %d", without, bodies, none)
	}
}
