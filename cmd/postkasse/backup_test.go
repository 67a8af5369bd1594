package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/internal/syncbuf"
	"postkasse.dev/postkasse/store"
)

// subjects returns the subject of every message in a folder.
func (ts *testServer) subjects(user, pass, folder string) []string {
	ts.t.Helper()
	c := ts.login(user, pass, nil)
	defer c.Logout()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		ts.t.Fatal(err)
	}
	msgs, err := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		ts.t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Envelope.Subject)
	}
	return out
}

// newTestServer prepares a server with its own directory and baseConfig
// (+extra) without starting it.
func newTestServer(t *testing.T, extra string) *testServer {
	dir := t.TempDir()
	ts := &testServer{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.toml"), logs: &syncbuf.Buffer{}, stopped: true}
	ts.writeConfig(baseConfig + extra)
	t.Cleanup(ts.stop)
	return ts
}

// TestBackupUnderLoadRestores: a backup taken through the running server
// while four clients deliver holds every message answered 250 before the
// backup began, exactly once, and restores into a fresh data directory.
// Restore refuses a running server's store and a damaged file.
func TestBackupUnderLoadRestores(t *testing.T) {
	t.Parallel()
	bboltOnlyTest(t, "backup and restore copy the bbolt file; a PostgreSQL store is backed up with pg_dump or pg_basebackup")
	ts := startServer(t, "")
	closeSocket := ts.serveControlSocket()

	var (
		mu       sync.Mutex
		accepted = map[string]time.Time{} // subject -> when its 250 had arrived
		stop     atomic.Bool
		sent     atomic.Int64
		wg       sync.WaitGroup
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				subject := fmt.Sprintf("load %d-%d", g, i)
				if err := ts.send("client@example.org", []string{"anna@contoso.test"}, message("client@example.org", "anna@contoso.test", subject, "body")); err != nil {
					t.Errorf("send %s: %v", subject, err)
					return
				}
				mu.Lock()
				accepted[subject] = time.Now()
				mu.Unlock()
				sent.Add(1)
			}
		}()
	}
	for sent.Load() < 40 && !t.Failed() {
		time.Sleep(5 * time.Millisecond)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	begun := time.Now()
	var out, errOut bytes.Buffer
	code := run([]string{"backup", "-config", ts.cfgPath, file}, nil, &out, &errOut)
	during := sent.Load()
	stop.Store(true)
	wg.Wait()
	if code != 0 || !strings.Contains(out.String(), "checked") {
		t.Fatalf("backup: exit %d %s%s", code, out.String(), errOut.String())
	}
	ts.waitLog(`msg="backup written"`)
	t.Logf("%d messages sent before the backup ended, %d in all", during, sent.Load())
	closeSocket()
	ts.stop()

	fresh := newTestServer(t, "")
	out.Reset()
	if code := run([]string{"restore", "-config", fresh.cfgPath, file}, nil, &out, &errOut); code != 0 {
		t.Fatalf("restore: exit %d %s", code, errOut.String())
	}
	fresh.start()
	got := map[string]int{}
	for _, s := range fresh.subjects("anna@contoso.test", "anna-secret", "INBOX") {
		got[s]++
	}
	before := 0
	for subject, at := range accepted {
		if at.Before(begun) {
			before++
			if got[subject] != 1 {
				t.Errorf("%q, answered 250 before the backup, is in it %d times", subject, got[subject])
			}
		}
	}
	for subject, n := range got {
		if n != 1 {
			t.Errorf("%q is in the backup %d times", subject, n)
		}
	}
	if before < 40 {
		t.Fatalf("only %d messages were accepted before the backup", before)
	}

	errOut.Reset()
	if code := run([]string{"restore", "-config", fresh.cfgPath, file}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "stop the server first") {
		t.Fatalf("restore while the server runs: exit %d %s", code, errOut.String())
	}
	fresh.stop()
	db := filepath.Join(fresh.dir, "data", "mail.db")
	held, _ := os.ReadFile(db)
	data, _ := os.ReadFile(file)
	// A body changed in the copy: bbolt's checks cannot see it, the
	// store's can.
	flipped := bytes.ReplaceAll(data, []byte("Subject: load 0-1\r\n"), []byte("Subject: load 0-X\r\n"))
	if bytes.Equal(flipped, data) {
		t.Fatal("no body to damage in the backup")
	}
	for name, damaged := range map[string][]byte{"cut short": data[:len(data)/2], "changed body": flipped} {
		bad := filepath.Join(t.TempDir(), "bad.db")
		os.WriteFile(bad, damaged, 0o600)
		errOut.Reset()
		if code := run([]string{"restore", "-config", fresh.cfgPath, bad}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not a sound store") {
			t.Errorf("restore of a backup %s: exit %d %s", name, code, errOut.String())
		}
	}
	if now, _ := os.ReadFile(db); !bytes.Equal(now, held) {
		t.Fatal("a refused restore changed the store")
	}
	st, err := store.Open(context.Background(), store.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestBackupWithServerStopped: backup opens the store itself when no
// server runs.
func TestBackupWithServerStopped(t *testing.T) {
	t.Parallel()
	bboltOnlyTest(t, "backup and restore copy the bbolt file; a PostgreSQL store is backed up with pg_dump or pg_basebackup")
	ts := startServer(t, "")
	if err := ts.send("client@example.org", []string{"bo@contoso.test"}, message("client@example.org", "bo@contoso.test", "kept", "body")); err != nil {
		t.Fatal(err)
	}
	ts.stop()
	file := filepath.Join(t.TempDir(), "backup.db")
	var out, errOut bytes.Buffer
	if code := run([]string{"backup", "-config", ts.cfgPath, file}, nil, &out, &errOut); code != 0 {
		t.Fatalf("backup: exit %d %s", code, errOut.String())
	}
	fresh := newTestServer(t, "")
	if code := run([]string{"restore", "-config", fresh.cfgPath, file}, nil, &out, &errOut); code != 0 {
		t.Fatalf("restore: exit %d %s", code, errOut.String())
	}
	fresh.start()
	if got := fresh.subjects("bo@contoso.test", "bo-secret", "INBOX"); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("restored INBOX: %q", got)
	}
}
