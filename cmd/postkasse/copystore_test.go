package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// copyConfig gives anna an automatic reply, the shared mailbox info with
// per-user \Seen, and a smarthost that refuses connections, so outbound
// mail stays queued. STORE is replaced with the [store] table.
const copyConfig = `
[user.anna.auto_reply]
enabled  = true
external = "I am away"

[shared.info]
address = "info@contoso.test"
members = ["anna@contoso.test", "bo@contoso.test"]
seen    = "per-user"

[outbound]
smarthost     = "DOWN"
smarthost_tls = "none"
STORE`

// copyCluster is the PostgreSQL cluster for copy-store's tests: the
// suite's own when it runs on PostgreSQL, else one of the test's.
func copyCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	if testCluster != nil {
		return testCluster
	}
	return pgtest.Own(t)
}

// TestCopyStoreToPostgresAndBack fills a bbolt store through the running
// server, copies it into PostgreSQL with the server stopped, serves it
// from there, copies it back into a new bbolt file and serves that: every
// user sees the same folders, UIDVALIDITY, UIDs, flags, keywords and own
// \Seen over IMAP at each step, SEARCH TEXT finds the same messages, the
// queue keeps its messages with their attempts, and the automatic-reply
// memory still holds. Each copy holds every body's search data as its
// source did (before a server's refresh could make it again).
func TestCopyStoreToPostgresAndBack(t *testing.T) {
	t.Parallel()
	cluster := copyCluster(t)
	down := freePort(t)
	configWith := func(dataDir, storeTable string) string {
		text := strings.ReplaceAll(copyConfig, "DOWN", down)
		text = strings.ReplaceAll(text, "STORE", storeTable)
		return strings.Replace(baseConfig, `data_dir = "DATA"`, `data_dir = "`+dataDir+`"`, 1) + text
	}
	ts := startServer(t, strings.ReplaceAll(strings.ReplaceAll(copyConfig, "DOWN", down), "STORE", "\n[store]\nbackend = \"bbolt\"\n"))
	fillThroughServer(t, ts)
	want := ts.everyoneSees()
	wantQueue := ts.queueState()
	if !strings.Contains(want, "card: 200") || !strings.Contains(want, "UID 3 [] to-anna-2@test") ||
		!strings.Contains(want, "SEARCH TEXT HELLO: [1 3]") {
		t.Fatalf("the filled store shows:\n%s", want)
	}

	ts.stop()
	cfg, err := config.Load(ts.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	wantSearch := searchDataOf(t, bboltPrefix+storePath(cfg))
	dsn := pgtest.DB(t, cluster)
	copyStoreTo(t, ts, dsn)
	if got := searchDataOf(t, dsn); !maps.Equal(got, wantSearch) {
		t.Errorf("search data on PostgreSQL differs from the source's (%d bodies, %d before the copy)", len(got), len(wantSearch))
	}
	// A second copy into the same database is refused: it holds a store.
	var out, errOut bytes.Buffer
	if code := run([]string{"copy-store", "-config", ts.cfgPath, "-to", dsn}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not empty") {
		t.Fatalf("copy into a full database: %d %s", code, errOut.String())
	}

	ts.writeConfig(configWith("DATA", fmt.Sprintf("\n[store]\nbackend = \"postgres\"\ndsn = %q\n", dsn)))
	ts.start()
	if got := ts.everyoneSees(); got != want {
		t.Errorf("on PostgreSQL:\n%s\nbefore the copy:\n%s", got, want)
	}
	if got := ts.queueState(); got != wantQueue {
		t.Errorf("queue on PostgreSQL:\n%s\nbefore:\n%s", got, wantQueue)
	}
	// The memory of the automatic reply came along: the same sender gets
	// no second one (the reply is queued before the 250).
	if err := ts.send("client@example.org", []string{"anna@contoso.test"}, message("client@example.org", "anna@contoso.test", "again", "x")); err != nil {
		t.Fatal(err)
	}
	if got := ts.queueState(); got != wantQueue {
		t.Errorf("a second automatic reply after the copy:\n%s", got)
	}
	want = ts.everyoneSees()

	ts.stop()
	back := filepath.Join(ts.dir, "data2", "mail.db")
	wantSearch = searchDataOf(t, dsn)
	copyStoreTo(t, ts, "bbolt:"+back)
	if got := searchDataOf(t, "bbolt:"+back); !maps.Equal(got, wantSearch) {
		t.Errorf("search data back on bbolt differs from PostgreSQL's (%d bodies, %d there)", len(got), len(wantSearch))
	}
	ts.writeConfig(configWith("DATA2", "\n[store]\nbackend = \"bbolt\"\n"))
	ts.start()
	if got := ts.everyoneSees(); got != want {
		t.Errorf("back on bbolt:\n%s\non PostgreSQL:\n%s", got, want)
	}
	if got := ts.queueState(); got != wantQueue {
		t.Errorf("queue back on bbolt:\n%s\nbefore:\n%s", got, wantQueue)
	}
}

// TestCopyStoreRefusals: copy-store refuses while the server runs (it
// answers on the control socket, or holds the store), a target that holds
// a store, a bad DSN without quoting it, and a database it cannot reach;
// a refused copy leaves the source as it was.
func TestCopyStoreRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "\n[store]\nbackend = \"bbolt\"\n")
	if err := ts.send("client@example.org", []string{"anna@contoso.test"}, message("client@example.org", "anna@contoso.test", "keep", "x")); err != nil {
		t.Fatal(err)
	}
	copyTo := func(to string) (int, string) {
		var out, errOut bytes.Buffer
		code := run([]string{"copy-store", "-config", ts.cfgPath, "-to", to}, nil, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	target := filepath.Join(ts.dir, "copy", "mail.db")
	// The server holds the store (no control socket in tests).
	if code, out := copyTo("bbolt:" + target); code != 1 || !strings.Contains(out, "stop every postkasse server") {
		t.Fatalf("copy while the server holds the store: %d %s", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := listenControl(filepath.Join(ts.dir, "data", controlSocketName))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		serveControl(ctx, ln, ts.srv, ts.srv.log)
		close(served)
	}()
	if code, out := copyTo("bbolt:" + target); code != 1 || !strings.Contains(out, "the server is running") {
		t.Fatalf("copy while the server answers: %d %s", code, out)
	}
	cancel()
	<-served // the socket is closed: the copies below must not find it answering
	ts.stop()
	for _, c := range []struct {
		to, want string
		code     int
	}{
		{"", "usage:", 2},
		{"bbolt:", "needs the path", 2},
		{"postgres://postkasse:hunter2@[::1", "not a PostgreSQL connection string", 2},
		{"postgres://postkasse:hunter2@" + freePort(t) + "/postkasse?connect_timeout=5", "target", 1},
		{"bbolt:" + storePath(loadConfig(t, ts.cfgPath)), "not empty", 1},
	} {
		code, out := copyTo(c.to)
		if code != c.code || !strings.Contains(out, c.want) || strings.Contains(out, "hunter2") {
			t.Errorf("-to %q: %d %s", c.to, code, out)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(ts.dir, "copy", "mail.db*")); len(left) > 1 {
		t.Errorf("refused copies left %v", left)
	}
	ts.start()
	if n := ts.count("anna@contoso.test", "anna-secret", "INBOX"); n != 1 {
		t.Fatalf("after the refusals anna has %d messages", n)
	}
}

// copyStoreTo runs copy-store on the test server's file.
func copyStoreTo(t *testing.T, ts *testServer, to string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run([]string{"copy-store", "-config", ts.cfgPath, "-to", to}, nil, &out, &errOut); code != 0 {
		t.Fatalf("copy-store -to %s: %d\n%s", to, code, errOut.String())
	}
	if !strings.Contains(out.String(), "copied ") || !strings.Contains(out.String(), "3 accounts") {
		t.Fatalf("copy-store said: %s", out.String())
	}
}

// searchDataOf maps each body of a stopped store (a DSN or bbolt:PATH, as
// -to) to its search data, as copy-store exports it; it fails the test
// when a body has none (the server stored each with its search data).
func searchDataOf(t *testing.T, where string) map[[32]byte]string {
	t.Helper()
	out := map[[32]byte]string{}
	fn := func(r store.Record) error {
		if b, ok := r.(*store.BodyRecord); ok {
			if b.Search == nil {
				t.Errorf("%s: body %x has no search data", where, b.Hash[:6])
			}
			out[b.Hash] = string(b.Search)
		}
		return nil
	}
	var err error
	if path, ok := strings.CutPrefix(where, bboltPrefix); ok {
		err = store.Export(context.Background(), path, fn)
	} else {
		err = postgres.Export(context.Background(), where, fn)
	}
	if err != nil || len(out) == 0 {
		t.Fatalf("%s: %d bodies, %v", where, len(out), err)
	}
	return out
}

// fillThroughServer gives the store something of everything through the
// server's own doors: deliveries, APPEND, flags and keywords, an expunge,
// a new subscribed folder, per-user \Seen, an automatic reply and a
// message queued for a remote that refuses.
func fillThroughServer(t *testing.T, ts *testServer) {
	t.Helper()
	for i := range 3 {
		for _, rcpt := range []string{"anna@contoso.test", "info@contoso.test"} {
			subject := fmt.Sprintf("to %s %d", strings.TrimSuffix(rcpt, "@contoso.test"), i)
			if err := ts.send("client@example.org", []string{rcpt}, message("client@example.org", rcpt, subject, "hello")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example"},
		message("anna@contoso.test", "partner@fabrikam.example", "outbound", "x")); err != nil {
		t.Fatal(err)
	}
	anna := ts.login("anna@contoso.test", "anna-secret", nil)
	if _, err := anna.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(anna.Store(goimap.UIDSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagFlagged, "$label1"}}, nil).Close())
	must(anna.Store(goimap.UIDSetNum(2), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close())
	must(anna.Expunge().Close())
	must(anna.Create("Projects", nil).Wait())
	must(anna.Subscribe("Projects").Wait())
	body := message("anna@contoso.test", "anna@contoso.test", "appended", "draft")
	app := anna.Append("Projects", int64(len(body)), &goimap.AppendOptions{Flags: []goimap.Flag{goimap.FlagDraft, "client-keyword"}})
	app.Write([]byte(body))
	must(app.Close())
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	// anna reads the first message of the shared mailbox; bo does not.
	if _, err := anna.Select(infoInbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	must(anna.Store(goimap.UIDSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagSeen}}, nil).Close())
	anna.Logout()
	contacts := ts.discoverBooks("anna@contoso.test", "anna-secret")["contacts"].Path
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PUT", contacts+"paul.vcf", "text/vcard", []byte(annaCard)); code != http.StatusCreated {
		t.Fatalf("PUT card: %d", code)
	}
	bo := ts.login("bo@contoso.test", "bo-secret", nil)
	must(bo.Unsubscribe("Shared/info@contoso.test/Junk").Wait())
	bo.Logout()
	// Every queued message has met the refusing remote once.
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs, err := ts.srv.store.QueueList(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 2 && !slices.ContainsFunc(msgs, func(m store.QueuedMessage) bool { return m.Attempts == 0 }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue: %+v", msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// everyoneSees renders what anna and bo see over IMAP, and anna's card
// over CardDAV.
func (ts *testServer) everyoneSees() string {
	contacts := ts.discoverBooks("anna@contoso.test", "anna-secret")["contacts"].Path
	code, card, h := ts.davDo("anna@contoso.test", "anna-secret", "GET", contacts+"paul.vcf", "", nil)
	return ts.imapView("anna@contoso.test", "anna-secret") + ts.imapView("bo@contoso.test", "bo-secret") +
		fmt.Sprintf("card: %d ETag %s\n%s", code, h.Get("ETag"), card)
}

// imapView renders what user sees over IMAP: every folder with its
// attributes, STATUS, and each message's UID, flags and Message-ID.
// EXAMINE leaves \Recent as it is.
func (ts *testServer) imapView(user, pass string) string {
	ts.t.Helper()
	c := ts.login(user, pass, nil)
	defer c.Logout()
	list, err := c.List("", "*", &goimap.ListOptions{ReturnSubscribed: true, ReturnSpecialUse: true}).Collect()
	if err != nil {
		ts.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", user)
	for _, mb := range list {
		attrs := make([]string, 0, len(mb.Attrs))
		for _, a := range mb.Attrs {
			attrs = append(attrs, string(a))
		}
		slices.Sort(attrs)
		fmt.Fprintf(&b, "%s %v\n", mb.Mailbox, attrs)
		if slices.Contains(mb.Attrs, goimap.MailboxAttrNoSelect) {
			continue
		}
		st, err := c.Status(mb.Mailbox, &goimap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true}).Wait()
		if err != nil {
			ts.t.Fatalf("status %s: %v", mb.Mailbox, err)
		}
		fmt.Fprintf(&b, "  messages %d, UIDNEXT %d, UIDVALIDITY %d, unseen %d\n", *st.NumMessages, st.UIDNext, st.UIDValidity, *st.NumUnseen)
		if _, err := c.Select(mb.Mailbox, &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			ts.t.Fatalf("examine %s: %v", mb.Mailbox, err)
		}
		msgs, err := c.Fetch(goimap.UIDSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
		if err != nil {
			ts.t.Fatalf("fetch %s: %v", mb.Mailbox, err)
		}
		for _, m := range msgs {
			flags := make([]string, 0, len(m.Flags))
			for _, f := range m.Flags {
				flags = append(flags, string(f))
			}
			slices.Sort(flags)
			fmt.Fprintf(&b, "  UID %d %v %s\n", m.UID, flags, m.Envelope.MessageID)
		}
		found, err := c.UIDSearch(&goimap.SearchCriteria{Text: []string{"HELLO"}}, nil).Wait()
		if err != nil {
			ts.t.Fatalf("search %s: %v", mb.Mailbox, err)
		}
		fmt.Fprintf(&b, "  SEARCH TEXT HELLO: %v\n", found.AllUIDs())
	}
	return b.String()
}

// queueState renders the outbound queue: ids, attempts, next attempts and
// each recipient's state.
func (ts *testServer) queueState() string {
	ts.t.Helper()
	msgs, err := ts.srv.store.QueueList(context.Background())
	if err != nil {
		ts.t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d from %q kind %q created %s attempts %d next %s error %q warned %v\n", m.ID, m.From, m.Kind,
			m.Created.UTC().Format(time.RFC3339Nano), m.Attempts, m.NextAttempt.UTC().Format(time.RFC3339Nano), m.LastError, m.DelayWarned)
		for _, r := range m.Recipients {
			fmt.Fprintf(&b, "  %s %d %q\n", r.Address, r.State, r.Reply)
		}
	}
	return b.String()
}

// FuzzCopyWhere: whatever -to holds, describing it never panics, and a
// refusal never quotes it (a DSN may hold a password).
func FuzzCopyWhere(f *testing.F) {
	for _, s := range []string{"bbolt:/var/lib/postkasse/mail.db", "bbolt:", "postgres://u:pw@db/postkasse", "host=db password=pw dbname=x", "postgres://u:pw@[::1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, to string) {
		where, err := copyWhere(to)
		if err != nil {
			if len(to) >= 8 && strings.Contains(err.Error(), to) {
				t.Fatalf("refusal quotes -to: %v", err)
			}
			return
		}
		if !strings.HasPrefix(where, "bbolt ") && !strings.HasPrefix(where, "postgres ") {
			t.Fatalf("%q described as %q", to, where)
		}
	})
}
