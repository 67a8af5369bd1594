package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Path: path, SearchData: func(b []byte) []byte { return []byte(fmt.Sprint(len(b))) }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fillForVerify gives two accounts some mail, one message in both.
func fillForVerify(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for i := range 5 {
		d := &Delivery{Body: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)), Targets: []Target{
			{Account: "anna", Folder: "INBOX"}, {Account: "bo", Folder: "INBOX", Flags: []string{FlagSeen}},
		}}
		if i%2 == 0 {
			d.Queue = []NewQueuedMessage{{From: "anna@contoso.test", Recipients: []string{"x@fabrikam.example"}, Body: d.Body}}
		}
		if _, err := s.Deliver(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSubscribed(ctx, "anna", "bo", "INBOX", true); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyFindsBrokenInvariants: a sound store passes; a wrong folder
// counter, usage total or reference count, a changed body, search data no
// body has, or a record naming another body's search data, is found.
func TestVerifyFindsBrokenInvariants(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, filepath.Join(t.TempDir(), "mail.db"))
	defer s.Close()
	fillForVerify(t, s)
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("sound store: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		break_     func(tx *bolt.Tx) error
	}{
		{"usage", "usage", func(tx *bolt.Tx) error {
			a, _ := getAccount(tx, "anna", false)
			return a.addUsage(1)
		}},
		{"folder counter", "counters say", func(tx *bolt.Tx) error {
			a, _ := getAccount(tx, "bo", false)
			f, _ := a.folder(a.folderID("INBOX"))
			f.unseen++
			return a.putFolder(a.folderID("INBOX"), &f)
		}},
		{"reference count", "reference count", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketBlobRefs).Cursor().First()
			var h [32]byte
			copy(h[:], k)
			return addBlobRef(tx, h)
		}},
		{"search data", "no body has it", func(tx *bolt.Tx) error {
			_, err := putSearchData(tx, []byte("orphan"))
			return err
		}},
		{"search id", "name search data", func(tx *bolt.Tx) error {
			a, _ := getAccount(tx, "anna", false)
			msgs := a.messages(a.folderID("INBOX"))
			var rec messageRecord
			if err := decodeMessage(msgs.Get(u32(1)), &rec, true); err != nil {
				return err
			}
			rec.searchID += 1000
			return msgs.Put(u32(1), rec.encode())
		}},
		{"body", "does not match its hash", func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketBlobs).Cursor().First()
			return tx.Bucket(bucketBlobs).Put(append([]byte(nil), k...), append([]byte("X"), v...))
		}},
	} {
		// Each breakage runs in a transaction that is rolled back.
		errDone := errors.New("rolled back")
		err := s.db.Update(func(tx *bolt.Tx) error {
			if err := tc.break_(tx); err != nil {
				return err
			}
			if err := verifyTx(tx, true); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s broken: Verify says %v", tc.name, err)
			}
			return errDone
		})
		if !errors.Is(err, errDone) {
			t.Fatal(err)
		}
	}
}

// TestPurgeAccount: everything of the purged account goes, its bodies
// lose their references, the other account keeps its mail, and the store
// stays sound.
func TestPurgeAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTestStore(t, filepath.Join(t.TempDir(), "mail.db"))
	defer s.Close()
	fillForVerify(t, s)
	if err := s.PurgeAccount(ctx, "bo"); err != nil {
		t.Fatal(err)
	}
	if err := s.PurgeAccount(ctx, "bo"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second purge: %v", err)
	}
	accounts, err := s.Accounts(ctx)
	if err != nil || len(accounts) != 1 || accounts[0].ID != "anna" || accounts[0].Messages != 5 {
		t.Fatalf("accounts after purge: %+v %v", accounts, err)
	}
	if subs, _ := s.Subscriptions(ctx, "anna", "bo"); len(subs) != 0 {
		t.Fatalf("subscriptions to the purged account remain: %v", subs)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBackupAndRestore: a snapshot restores to an equal, sound store; a
// damaged one replaces nothing; an open store cannot be replaced.
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestStore(t, filepath.Join(dir, "mail.db"))
	fillForVerify(t, s)
	backup := filepath.Join(dir, "backup.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Backup(ctx, func(size int64, snap io.WriterTo) error {
		n, err := snap.WriteTo(f)
		if err == nil && n != size {
			err = fmt.Errorf("wrote %d of %d bytes", n, size)
		}
		return err
	})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "restored", "mail.db")
	os.Mkdir(filepath.Dir(target), 0o700)
	held := openTestStore(t, target)
	if err := Restore(ctx, target, backup); !errors.Is(err, ErrInUse) {
		t.Fatalf("restore over an open store: %v", err)
	}
	held.Close()
	damaged := filepath.Join(dir, "damaged.db")
	data, _ := os.ReadFile(backup)
	os.WriteFile(damaged, data[:len(data)/2], 0o600)
	if err := Restore(ctx, target, damaged); err == nil {
		t.Fatal("a truncated backup was restored")
	}
	if err := Restore(ctx, target, backup); err != nil {
		t.Fatal(err)
	}
	r := openTestStore(t, target)
	defer r.Close()
	if err := r.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	want, _ := s.Accounts(ctx)
	got, _ := r.Accounts(ctx)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored accounts %+v, want %+v", got, want)
	}
	s.Close()
}
