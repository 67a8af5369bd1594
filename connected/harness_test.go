package connected

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/internal/syncbuf"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

const (
	remoteUser = "anna@example.org"
	remotePass = "remote-secret"
)

// remote is an in-memory IMAP server on a loopback port, with one user.
type remote struct {
	addr string
	user *imapmemserver.User
}

type remoteOptions struct {
	caps     goimap.CapSet // nil: IMAP4rev1 alone (no UIDPLUS)
	tls      *tls.Config   // with implicit: the listener speaks TLS; else STARTTLS is offered
	implicit bool
	fetches  *atomic.Int32 // counts FETCH commands, when set
}

// countingSession counts the FETCH commands of a session.
type countingSession struct {
	imapserver.Session
	fetches *atomic.Int32
}

func (s countingSession) Fetch(w *imapserver.FetchWriter, numSet goimap.NumSet, options *goimap.FetchOptions) error {
	s.fetches.Add(1)
	return s.Session.Fetch(w, numSet, options)
}

func newRemote(t *testing.T, o remoteOptions) *remote {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(remoteUser, remotePass)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if o.fetches != nil {
				return countingSession{Session: mem.NewSession(), fetches: o.fetches}, nil, nil
			}
			return mem.NewSession(), nil, nil
		},
		Caps: o.caps, InsecureAuth: true, Logger: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicit {
		ln = tls.NewListener(ln, o.tls)
	} else {
		opts.TLSConfig = o.tls
	}
	srv := imapserver.New(opts)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &remote{addr: ln.Addr().String(), user: user}
}

// add appends a message to the remote INBOX and returns its UID.
func (r *remote) add(t *testing.T, msg string) uint32 {
	t.Helper()
	data, err := r.user.Append("INBOX", bytes.NewReader([]byte(msg)), &goimap.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return uint32(data.UID)
}

func (r *remote) count(t *testing.T) uint32 {
	t.Helper()
	st, err := r.user.Status("INBOX", &goimap.StatusOptions{NumMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumMessages
}

// recreate deletes and creates the remote INBOX: it gets a new UIDVALIDITY.
func (r *remote) recreate(t *testing.T) {
	t.Helper()
	if err := r.user.Delete("INBOX"); err != nil {
		t.Fatal(err)
	}
	if err := r.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
}

// local is the receiving side: a real store and delivery agent, with the
// mailbox anna.
type local struct {
	path  string
	store *store.Store
	agent *delivery.Agent
	dir   atomic.Pointer[policy.Directory]
	logs  *syncbuf.Buffer
}

func newLocal(t *testing.T, quota int64) *local {
	t.Helper()
	l := &local{path: filepath.Join(t.TempDir(), "mail.db"), logs: &syncbuf.Buffer{}}
	l.setQuota(t, quota)
	l.open(t)
	t.Cleanup(func() { l.close(t) })
	return l
}

func (l *local) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *local) open(t *testing.T) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: l.path})
	if err != nil {
		t.Fatal(err)
	}
	l.store = st
	l.agent, err = delivery.New(delivery.Options{Store: st, Directory: l.dir.Load, Hostname: "mail.contoso.test", Logger: l.logger()})
	if err != nil {
		t.Fatal(err)
	}
}

func (l *local) close(t *testing.T) {
	t.Helper()
	if l.store == nil {
		return
	}
	if err := l.store.Check(); err != nil {
		t.Errorf("consistency check: %v", err)
	}
	if err := l.store.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
	l.store = nil
	if t.Failed() {
		t.Logf("log:\n%s", l.logs.String())
	}
}

func (l *local) setQuota(t *testing.T, quota int64) {
	t.Helper()
	dir, err := policy.NewDirectory(policy.DirectoryOptions{
		Domains:   []string{"contoso.test"},
		Mailboxes: []policy.Mailbox{{ID: "anna", Kind: policy.KindUser, Address: "anna@contoso.test", Quota: quota}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l.dir.Store(dir)
}

func (l *local) runner(t *testing.T) *Runner {
	t.Helper()
	r, err := New(Options{Store: l.store, Filer: l.agent, Logger: l.logger(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// bodies returns the messages of anna's folder, in UID order.
func (l *local) bodies(t *testing.T, folder string) []string {
	t.Helper()
	ctx := context.Background()
	acc := store.Access{Account: "anna", Viewer: "anna"}
	view, err := l.store.Select(ctx, acc, folder, false)
	if errors.Is(err, store.ErrNoFolder) {
		return nil
	}
	if err != nil {
		t.Fatalf("select %s: %v", folder, err)
	}
	var out []string
	for _, uid := range view.UIDs {
		b, err := l.store.Body(ctx, acc, view.Info.ID, uid)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// account is a connected account of anna's on r, without TLS.
func account(r *remote) Account {
	return Account{
		Mailbox: "anna", Host: r.addr, Security: "none", Username: remoteUser, Password: remotePass,
		Folder: "INBOX", Into: "INBOX", Interval: time.Hour,
	}
}

// pullOnce runs one round of a on a fresh Runner.
func (l *local) pullOnce(t *testing.T, a Account) (int, error) {
	t.Helper()
	r := l.runner(t)
	return r.round(context.Background(), a, r.log)
}

func mail(subject string) string {
	return "From: someone@example.net\r\nTo: " + remoteUser + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.net>\r\n\r\nText of " + subject + ".\r\n"
}

// subjects lists the Subject of each message.
func subjects(bodies []string) []string {
	var out []string
	for _, b := range bodies {
		for line := range strings.SplitSeq(b, "\r\n") {
			if s, ok := strings.CutPrefix(line, "Subject: "); ok {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
