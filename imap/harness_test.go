package imap

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postkasse.dev/postkasse/store"
)

// fakeDirectory is a fixed directory: users with passwords, shared
// mailboxes with per-user access. The real one (policy) is tested through
// the whole server in cmd/postkasse.
type fakeDirectory struct {
	mu        sync.Mutex
	passwords map[string]string // address -> password
	users     map[string]User   // address -> user
	mailboxes map[string]Mailbox
	access    map[string]map[string]Mailbox // user id -> mailbox id -> access
}

func newFakeDirectory() *fakeDirectory {
	d := &fakeDirectory{
		passwords: map[string]string{}, users: map[string]User{},
		mailboxes: map[string]Mailbox{}, access: map[string]map[string]Mailbox{},
	}
	for _, u := range []string{"anna", "bo", "carl"} {
		addr := u + "@contoso.test"
		d.passwords[addr] = u + "-pw"
		d.users[addr] = User{ID: u, Address: addr}
		d.mailboxes[u] = Mailbox{ID: u, Address: addr}
	}
	d.mailboxes["info"] = Mailbox{ID: "info", Address: "info@contoso.test"}
	d.grant("anna", "info", false, false)
	d.grant("bo", "info", false, false)
	return d
}

func (d *fakeDirectory) grant(user, mailbox string, readOnly, perUser bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.access[user] == nil {
		d.access[user] = map[string]Mailbox{}
	}
	mb := d.mailboxes[mailbox]
	mb.ReadOnly, mb.SeenPerUser = readOnly, perUser
	d.access[user][mailbox] = mb
}

// setQuota gives a mailbox a quota, as every user reaches it.
func (d *fakeDirectory) setQuota(mailbox string, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	mb := d.mailboxes[mailbox]
	mb.Quota = bytes
	d.mailboxes[mailbox] = mb
	for _, byMailbox := range d.access {
		if mb, ok := byMailbox[mailbox]; ok {
			mb.Quota = bytes
			byMailbox[mailbox] = mb
		}
	}
}

func (d *fakeDirectory) revoke(user, mailbox string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.access[user], mailbox)
}

func (d *fakeDirectory) Login(username, password string) (User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[strings.ToLower(username)]
	if !ok || d.passwords[u.Address] != password {
		return User{}, ErrLoginFailed
	}
	return u, nil
}

func (d *fakeDirectory) Own(userID string) (Mailbox, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	mb, ok := d.mailboxes[userID]
	return mb, ok
}

func (d *fakeDirectory) Mailbox(userID, address string) (Mailbox, bool) {
	d.mu.Lock()
	var id string
	for _, mb := range d.mailboxes {
		if strings.EqualFold(mb.Address, address) {
			id = mb.ID
		}
	}
	d.mu.Unlock()
	return d.Access(userID, id)
}

func (d *fakeDirectory) Access(userID, mailboxID string) (Mailbox, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if userID == mailboxID {
		return d.mailboxes[userID], true
	}
	mb, ok := d.access[userID][mailboxID]
	return mb, ok
}

func (d *fakeDirectory) Shared(userID string) []Mailbox {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Mailbox
	for _, mb := range d.access[userID] {
		out = append(out, mb)
	}
	return out
}

// testServer is an IMAP server on a loopback port over a fresh store.
type testServer struct {
	addr  string
	store *store.Store
	dir   *fakeDirectory
	srv   *Server
	logs  *logBuffer
}

// logBuffer keeps the server's log for tests to inspect.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// bytes returns the whole log.
func (b *logBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// errors returns the log lines at level ERROR.
func (b *logBuffer) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}

func startServer(t *testing.T) *testServer { return startServerTB(t) }

func startServerTB(t testing.TB) *testServer { return startServerWith(t, nil) }

// startServerWith starts a server whose options tune adjusts; tune may
// also serve further listeners once the server exists.
func startServerWith(t testing.TB, tune func(*Options)) *testServer {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "mail.db"), Analyze: Analyze, SearchData: SearchData})
	if err != nil {
		t.Fatal(err)
	}
	dir := newFakeDirectory()
	logs := &logBuffer{}
	opts := Options{Store: st, Directory: dir, InsecureAuth: true, AppendLimit: 1 << 20, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if tune != nil {
		tune(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
	})
	return &testServer{addr: ln.Addr().String(), store: st, dir: dir, srv: srv, logs: logs}
}

// dial logs in as user; handler receives unilateral updates.
func (ts *testServer) dial(t *testing.T, username, password string, handler *imapclient.UnilateralDataHandler) *imapclient.Client {
	return ts.dialHandler(t, username, password, handler)
}

func (ts *testServer) dialHandler(t testing.TB, username, password string, handler *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(ts.addr, &imapclient.Options{UnilateralDataHandler: handler})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(username, password).Wait(); err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return c
}

func (ts *testServer) login(t *testing.T, user string) *imapclient.Client {
	return ts.dial(t, user+"@contoso.test", user+"-pw", nil)
}

func (ts *testServer) deliver(t testing.TB, account, body string) {
	t.Helper()
	_, err := ts.store.Deliver(context.Background(), &store.Delivery{
		Body:    []byte(strings.ReplaceAll(body, "\n", "\r\n")),
		Targets: []store.Target{{Account: account, Folder: "INBOX"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func imapCode(err error) goimap.ResponseCode {
	var imapErr *goimap.Error
	if e, ok := err.(*goimap.Error); ok {
		imapErr = e
		return imapErr.Code
	}
	return ""
}
