package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postkasse.dev/postkasse/store"
)

const doraConfig = `
[user.dora]
address  = "dora@contoso.test"
password = "` + annaHash + `"
quota    = "10KB"
`

// TestUsageAndPurge: usage lists every mailbox fullest first, through the
// running server and with it stopped; purge refuses a mailbox of the file
// or of the running configuration, deletes a removed one's data, and says
// so when there is nothing to delete.
func TestUsageAndPurge(t *testing.T) {
	t.Parallel()
	ts := startServer(t, doraConfig)
	closeSocket := ts.serveControlSocket()
	for i, to := range []string{"dora@contoso.test", "dora@contoso.test", "anna@contoso.test"} {
		body := strings.Repeat("a line of text\n", 100*(i+1))
		if err := ts.send("client@example.org", []string{to}, message("client@example.org", to, "usage", body)); err != nil {
			t.Fatal(err)
		}
	}
	usage := func(wantExit int) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run([]string{"usage", "-config", ts.cfgPath}, nil, &out, &errOut); code != wantExit {
			t.Fatalf("usage: exit %d %s", code, errOut.String())
		}
		return out.String()
	}
	got := usage(0)
	if !regexp.MustCompile(`(?s)MAILBOX.*\n *dora +user +dora@contoso.test +[0-9.]+ kB +2 +10.0 kB +[0-9.]+%\n.*anna +user +anna@contoso.test +[0-9.]+ kB +1 +50.0 GB +0.0%`).MatchString(got) {
		t.Fatalf("usage:\n%s", got)
	}
	purge := func(wantExit int, want string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run([]string{"purge", "-config", ts.cfgPath, "dora"}, nil, &out, &errOut)
		if code != wantExit || !strings.Contains(out.String()+errOut.String(), want) {
			t.Fatalf("purge dora: exit %d %s%s, want %q", code, out.String(), errOut.String(), want)
		}
	}
	purge(1, "is a mailbox of")
	ts.writeConfig(baseConfig) // dora removed from the file, not yet reloaded
	purge(1, "reload the server")
	if err := ts.srv.reload(ts.cfgPath); err != nil {
		t.Fatal(err)
	}
	got = usage(0)
	if !regexp.MustCompile(`\n *dora +not in the file +[0-9.]+ kB +2 +- +-`).MatchString(got) {
		t.Fatalf("usage after dora left the file:\n%s", got)
	}
	purge(0, "purged dora")
	ts.waitLog(`msg="mailbox data purged by the administrator" .*mailbox=dora`)
	if got := usage(0); strings.Contains(got, "dora") {
		t.Fatalf("usage after the purge:\n%s", got)
	}
	closeSocket()
	ts.stop()
	if got := usage(0); !regexp.MustCompile(`\n *anna +user +anna@contoso.test +[0-9.]+ kB +1 `).MatchString(got) {
		t.Fatalf("usage with the server stopped:\n%s", got)
	}
	purge(1, "the store holds nothing for dora")
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(ts.dir, "data", "mail.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}
