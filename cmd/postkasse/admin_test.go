package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// serveControlSocket opens the running test server's control socket, as
// `postkasse serve` does, until the test ends or the returned function
// closes it (as serve does before it stops the server).
func (ts *testServer) serveControlSocket() (closeSocket func()) {
	ts.t.Helper()
	ln, err := listenControl(filepath.Join(ts.dir, "data", controlSocketName))
	if err != nil {
		ts.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveControl(ctx, ln, ts.srv, slog.New(slog.NewTextHandler(ts.logs, nil)))
	}()
	closeSocket = func() {
		cancel()
		<-done
	}
	ts.t.Cleanup(closeSocket)
	return closeSocket
}

// waitLog waits until the server's log matches re.
func (ts *testServer) waitLog(re string) {
	ts.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for !rx.MatchString(ts.logs.String()) {
		if time.Now().After(deadline) {
			ts.t.Fatalf("no log line matching %s:\n%s", re, ts.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeTestConfig writes baseConfig (+extra) with a data directory of its
// own and returns the file's path and the data directory.
func writeTestConfig(t *testing.T, extra string) (cfgPath, data string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(baseConfig+extra, "DATA", data)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, data
}

// TestUsageErrorsExitTwo: no command, an unknown one, a bad flag or a
// missing argument is a usage error, status 2, with the usage on stderr.
func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	cfgPath, _ := writeTestConfig(t, "")
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"check", "-nosuchflag"},
		{"resolve", "-config", cfgPath},
		{"queue", "-config", cfgPath, "delete"},
		{"queue", "-config", cfgPath, "frob"},
		{"dkim-keygen", "-config", cfgPath},
		{"compact", "-config", cfgPath, "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, nil, &out, &errOut); code != 2 || !strings.Contains(strings.ToLower(errOut.String()), "usage") {
			t.Errorf("postkasse %q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}

// TestDKIMKeygenCommand: the key is written for a served domain only, not
// over an existing one without -force, and the record comes as strings of
// at most 255 bytes. Run as root, the key and its directory belong to the
// data directory's owner.
func TestDKIMKeygenCommand(t *testing.T) {
	t.Parallel()
	cfgPath, data := writeTestConfig(t, "")
	if os.Geteuid() == 0 {
		if err := os.Chown(data, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	if code := run([]string{"dkim-keygen", "-config", cfgPath, "-selector", "s1", "Contoso.test"}, nil, out, errOut); code != 0 {
		t.Fatalf("dkim-keygen: %s", errOut.String())
	}
	rec := regexp.MustCompile(`(?m)^s1\._domainkey\.contoso\.test\. IN TXT \( ((?:"[^"]*" ?)+) \)$`).FindStringSubmatch(out.String())
	if rec == nil {
		t.Fatalf("dkim-keygen output:\n%s", out.String())
	}
	strs := regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(rec[1], -1)
	var joined string
	for _, s := range strs {
		if len(s[1]) > 255 {
			t.Errorf("TXT string of %d bytes", len(s[1]))
		}
		joined += s[1]
	}
	if len(strs) < 2 || !strings.HasPrefix(joined, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("TXT record %q", rec[1])
	}
	key := filepath.Join(data, "dkim", "contoso.test.pem")
	first, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{key, filepath.Dir(key)} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
				t.Errorf("%s owned by %d:%d, want the data directory's 65534:65534", p, st.Uid, st.Gid)
			}
		}
	}

	errOut.Reset()
	if code := run([]string{"dkim-keygen", "-config", cfgPath, "contoso.test"}, nil, out, errOut); code != 1 || !strings.Contains(errOut.String(), "-force") {
		t.Fatalf("dkim-keygen over an existing key: exit %d %s", code, errOut.String())
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(again, first) {
		t.Fatal("the existing key was replaced without -force")
	}
	if code := run([]string{"dkim-keygen", "-config", cfgPath, "-force", "contoso.test"}, nil, out, errOut); code != 0 {
		t.Fatalf("dkim-keygen -force: %s", errOut.String())
	}
	if again, _ := os.ReadFile(key); bytes.Equal(again, first) {
		t.Fatal("-force did not replace the key")
	}
	errOut.Reset()
	if code := run([]string{"dkim-keygen", "-config", cfgPath, "fabrikam.example"}, nil, out, errOut); code != 1 || !strings.Contains(errOut.String(), "not one of the domains") {
		t.Fatalf("dkim-keygen of a foreign domain: exit %d %s", code, errOut.String())
	}
}

// TestCompactAsRootKeepsOwner: compaction run by root leaves the store
// owned by the service's user, as it found it.
func TestCompactAsRootKeepsOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("giving files away needs root (CI runs as root)")
	}
	cfgPath, data := writeTestConfig(t, "")
	db := filepath.Join(data, "mail.db")
	st, err := store.Open(context.Background(), store.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("x", 100<<10))
	for i := range 20 {
		d := &store.Delivery{Body: append(body, byte(i)), Targets: []store.Target{{Account: "anna", Folder: "Old"}}}
		if _, err := st.Deliver(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteFolder(context.Background(), "anna", "Old"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, p := range []string{data, db, db + ".lock"} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"compact", "-config", cfgPath}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "now") {
		t.Fatalf("compact: exit %d %s%s", code, out.String(), errOut.String())
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("compacted store owned by %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}

// TestQueueDeleteAndRecipientLog: the queue logs each recipient's outcome
// with the queue id; `queue delete` of an unknown id says so in a
// sentence, and a deletion is logged.
func TestQueueDeleteAndRecipientLog(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := closed.Addr().(*net.TCPAddr).Port
	closed.Close() // nobody answers there: every attempt is deferred
	zone := newDNSZone(t, "fabrikam.example. MX 10 mx.fabrikam.example.", "mx.fabrikam.example. A 127.0.0.1")
	ts := startServerPort(t, fmt.Sprintf("[outbound]\nresolver = %q\nretry_after = \"1h\"\n", zone.addr), port)
	ts.serveControlSocket()
	msg := "From: anna@contoso.test\nTo: partner@fabrikam.example\nSubject: hello\n\nhi\n"
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example"}, msg); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`msg="recipient deferred" .*id=\d+ rcpt=partner@fabrikam.example outcome=deferred reply=".*connection refused"`)
	id := regexp.MustCompile(`msg="recipient deferred" .*id=(\d+)`).FindStringSubmatch(ts.logs.String())[1]

	var out, errOut bytes.Buffer
	if code := run([]string{"queue", "-config", ts.cfgPath, "list"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "partner@fabrikam.example") {
		t.Fatalf("queue list: exit %d %s%s", code, out.String(), errOut.String())
	}
	if code := run([]string{"queue", "-config", ts.cfgPath, "delete", id}, nil, &out, &errOut); code != 0 {
		t.Fatalf("queue delete %s: exit %d %s", id, code, errOut.String())
	}
	ts.waitLog(`msg="queued message deleted by the administrator" .*id=` + id + ` from=anna@contoso.test recipients=\[partner@fabrikam.example\]`)
	errOut.Reset()
	if code := run([]string{"queue", "-config", ts.cfgPath, "delete", id}, nil, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "no message with id "+id+" in the queue") || strings.Contains(errOut.String(), "store:") {
		t.Fatalf("queue delete of an unknown id: exit %d %q", code, errOut.String())
	}
}
