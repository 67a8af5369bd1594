package connected

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/internal/testcert"
	"postkasse.dev/postkasse/store"
)

func TestNewMessagesFiledOnce(t *testing.T) {
	t.Parallel()
	rem := newRemote(t, remoteOptions{})
	l := newLocal(t, 0)
	rem.add(t, mail("first"))
	rem.add(t, "From: lf@example.net\nSubject: bare LF\n\nline one\nline two\n")
	a := account(rem)

	if n, err := l.pullOnce(t, a); err != nil || n != 2 {
		t.Fatalf("first round filed %d: %v", n, err)
	}
	got := l.bodies(t, "INBOX")
	if s := subjects(got); !slices.Equal(s, []string{"first", "bare LF"}) {
		t.Fatalf("local INBOX %q", s)
	}
	first := got[0]
	if !strings.HasPrefix(first, "Delivered-To: anna@contoso.test\r\nReceived: from 127.0.0.1\r\n\tby mail.contoso.test (postkasse) with IMAP id ") ||
		!strings.HasSuffix(first, mail("first")) {
		t.Fatalf("first message as filed:\n%s", first)
	}
	if strings.Contains(strings.ReplaceAll(got[1], "\r\n", ""), "\n") || !strings.HasSuffix(got[1], "\r\n\r\nline one\r\nline two\r\n") {
		t.Fatalf("bare LF message as filed: %q", got[1])
	}
	if n := rem.count(t); n != 2 {
		t.Fatalf("remote has %d messages, want both kept", n)
	}

	if n, err := l.pullOnce(t, a); err != nil || n != 0 {
		t.Fatalf("second round filed %d: %v", n, err)
	}
	rem.add(t, mail("third"))
	if n, err := l.pullOnce(t, a); err != nil || n != 1 {
		t.Fatalf("third round filed %d: %v", n, err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"first", "bare LF", "third"}) {
		t.Fatalf("local INBOX %q", s)
	}
}

// TestBatches: a first sync of many messages takes a FETCH per batch, not
// per message, and files them in order.
func TestBatches(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int32
	rem := newRemote(t, remoteOptions{fetches: &fetches})
	l := newLocal(t, 0)
	const n = 2*maxBatch + 22
	var want []string
	for i := range n {
		subject := fmt.Sprintf("message %d", i)
		rem.add(t, mail(subject))
		want = append(want, subject)
	}
	if got, err := l.pullOnce(t, account(rem)); err != nil || got != n {
		t.Fatalf("filed %d: %v", got, err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, want) {
		t.Fatalf("local INBOX %q", s)
	}
	// One FETCH lists the new messages, then one per batch.
	if got := fetches.Load(); got != 1+3 {
		t.Fatalf("%d FETCH commands, want 4", got)
	}
}

func TestBatchBounds(t *testing.T) {
	t.Parallel()
	msgs := func(sizes ...int64) []remoteMessage {
		var out []remoteMessage
		for i, size := range sizes {
			out = append(out, remoteMessage{uid: uint32(i + 1), size: size})
		}
		return out
	}
	lengths := func(bs [][]remoteMessage) []int {
		var out []int
		for _, b := range bs {
			out = append(out, len(b))
		}
		return out
	}
	many := make([]int64, maxBatch+1)
	for _, tc := range []struct {
		name string
		in   []remoteMessage
		want []int
	}{
		{"none", nil, nil},
		{"one", msgs(10), []int{1}},
		{"count bound", msgs(many...), []int{maxBatch, 1}},
		{"byte bound", msgs(maxBatchBytes/2, maxBatchBytes/2, 1), []int{2, 1}},
		{"large alone", msgs(1, maxBatchBytes*2, 1), []int{1, 1, 1}},
	} {
		if got := lengths(batches(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: batches of %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRestartFilesNothingTwice(t *testing.T) {
	t.Parallel()
	rem := newRemote(t, remoteOptions{})
	l := newLocal(t, 0)
	rem.add(t, mail("one"))
	rem.add(t, mail("two"))
	a := account(rem)
	a.Into = "Pulled"
	if n, err := l.pullOnce(t, a); err != nil || n != 2 {
		t.Fatalf("filed %d: %v", n, err)
	}
	l.close(t)
	l.open(t)
	rem.add(t, mail("three"))
	if n, err := l.pullOnce(t, a); err != nil || n != 1 {
		t.Fatalf("after restart filed %d: %v", n, err)
	}
	if s := subjects(l.bodies(t, "Pulled")); !slices.Equal(s, []string{"one", "two", "three"}) {
		t.Fatalf("local Pulled %q", s)
	}
}

// filedThenRecreated files two messages, "old one" and "old two", then
// recreates the remote folder empty: it has a new UIDVALIDITY.
func filedThenRecreated(t *testing.T) (*remote, *local, Account) {
	t.Helper()
	rem := newRemote(t, remoteOptions{})
	l := newLocal(t, 0)
	a := account(rem)
	rem.add(t, mail("old one"))
	rem.add(t, mail("old two"))
	if n, err := l.pullOnce(t, a); err != nil || n != 2 {
		t.Fatalf("filed %d: %v", n, err)
	}
	rem.recreate(t)
	return rem, l, a
}

// TestUIDValidityChange: when the remote folder is recreated, the messages
// in it are matched with those filed before by content: only the new ones
// are filed.
func TestUIDValidityChange(t *testing.T) {
	t.Parallel()
	rem, l, a := filedThenRecreated(t)
	rem.add(t, mail("old two"))
	rem.add(t, mail("arrived meanwhile"))
	rem.add(t, mail("old one"))
	if n, err := l.pullOnce(t, a); err != nil || n != 1 {
		t.Fatalf("after UIDVALIDITY change filed %d: %v", n, err)
	}
	if !strings.Contains(l.logs.String(), "remote UIDVALIDITY changed") {
		t.Error("UIDVALIDITY change not logged")
	}
	// The known message after the last one filed is passed over durably.
	if st, err := l.store.RemoteProgress(context.Background(), a.progressKey()); err != nil || st.LastUID != 3 {
		t.Fatalf("progress %+v %v", st, err)
	}
	rem.add(t, mail("later"))
	if n, err := l.pullOnce(t, a); err != nil || n != 1 {
		t.Fatalf("next round filed %d: %v", n, err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"old one", "old two", "arrived meanwhile", "later"}) {
		t.Fatalf("local INBOX %q", s)
	}
}

// TestUIDValidityChangeInSteps: a folder recreated empty and seen so by a
// round, then given its old messages back, files only the new one.
func TestUIDValidityChangeInSteps(t *testing.T) {
	t.Parallel()
	rem, l, a := filedThenRecreated(t)
	if n, err := l.pullOnce(t, a); err != nil || n != 0 {
		t.Fatalf("empty recreated folder: filed %d: %v", n, err)
	}
	rem.add(t, mail("old one"))
	rem.add(t, mail("new"))
	rem.add(t, mail("old two"))
	if n, err := l.pullOnce(t, a); err != nil || n != 1 {
		t.Fatalf("old messages copied back: filed %d: %v", n, err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"old one", "old two", "new"}) {
		t.Fatalf("local INBOX %q", s)
	}
}

// TestUIDValidityChangeInterrupted: a round that stops half-way through
// the matching (here: over quota) resumes it, also after a restart,
// without filing a message twice.
func TestUIDValidityChangeInterrupted(t *testing.T) {
	t.Parallel()
	rem, l, a := filedThenRecreated(t)
	rem.add(t, mail("old one"))
	rem.add(t, mail("new")+strings.Repeat("x", 5000))
	rem.add(t, mail("old two"))
	l.setQuota(t, 2000)
	if n, err := l.pullOnce(t, a); !errors.Is(err, store.ErrQuota) || n != 0 {
		t.Fatalf("over quota: filed %d: %v", n, err)
	}
	l.close(t)
	l.open(t)
	l.setQuota(t, 0)
	if n, err := l.pullOnce(t, a); err != nil || n != 1 {
		t.Fatalf("resumed: filed %d: %v", n, err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"old one", "old two", "new"}) {
		t.Fatalf("local INBOX %q", s)
	}
}

// TestQuotaKeepsMessagesWaiting: a message that does not fit stays on the
// remote and nothing after it is filed before it.
func TestQuotaKeepsMessagesWaiting(t *testing.T) {
	t.Parallel()
	rem := newRemote(t, remoteOptions{})
	l := newLocal(t, 3000)
	a := account(rem)
	rem.add(t, mail("small"))
	rem.add(t, mail("big")+strings.Repeat("x", 5000))
	rem.add(t, mail("small again"))
	if n, err := l.pullOnce(t, a); !errors.Is(err, store.ErrQuota) || n != 1 {
		t.Fatalf("filed %d: %v", n, err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"small"}) {
		t.Fatalf("local INBOX %q", s)
	}
	l.setQuota(t, 100000)
	if n, err := l.pullOnce(t, a); err != nil || n != 2 {
		t.Fatalf("with room filed %d: %v", n, err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"small", "big", "small again"}) {
		t.Fatalf("local INBOX %q", s)
	}
}

// TestDeleteRemote: the remote copy goes only once the local one is
// stored; a copy left behind (here: by a round without delete_remote, as a
// crash between the two would) is deleted at the next round.
func TestDeleteRemote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		caps goimap.CapSet
	}{
		{"EXPUNGE", nil},
		{"UID EXPUNGE", goimap.CapSet{goimap.CapIMAP4rev1: {}, goimap.CapUIDPlus: {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rem := newRemote(t, remoteOptions{caps: tc.caps})
			l := newLocal(t, 3000)
			a := account(rem)
			rem.add(t, mail("kept copy"))
			if n, err := l.pullOnce(t, a); err != nil || n != 1 {
				t.Fatalf("filed %d: %v", n, err)
			}
			rem.add(t, mail("small"))
			rem.add(t, mail("big")+strings.Repeat("x", 5000))
			a.DeleteRemote = true
			if n, err := l.pullOnce(t, a); !errors.Is(err, store.ErrQuota) || n != 1 {
				t.Fatalf("filed %d: %v", n, err)
			}
			if n := rem.count(t); n != 1 {
				t.Fatalf("remote has %d messages, want the one not stored", n)
			}
			l.setQuota(t, 0)
			if n, err := l.pullOnce(t, a); err != nil || n != 1 {
				t.Fatalf("filed %d: %v", n, err)
			}
			if n := rem.count(t); n != 0 {
				t.Fatalf("remote has %d messages after all were stored", n)
			}
			if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"kept copy", "small", "big"}) {
				t.Fatalf("local INBOX %q", s)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t)
	serverTLS, clientTLS := cert.Server, cert.Client
	l := newLocal(t, 0)
	r, err := New(Options{Store: l.store, Filer: l.agent, Logger: l.logger(), TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	for _, security := range []string{"tls", "starttls"} {
		rem := newRemote(t, remoteOptions{tls: serverTLS, implicit: security == "tls"})
		rem.add(t, mail(security))
		a := account(rem)
		a.Security = security
		if n, err := r.round(context.Background(), a, r.log); err != nil || n != 1 {
			t.Fatalf("%s: filed %d: %v", security, n, err)
		}
	}
	// A certificate the client does not trust is refused.
	untrusted := l.runner(t)
	rem := newRemote(t, remoteOptions{tls: serverTLS, implicit: true})
	rem.add(t, mail("untrusted"))
	a := account(rem)
	a.Security = "tls"
	if _, err := untrusted.round(context.Background(), a, untrusted.log); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"tls", "starttls"}) {
		t.Fatalf("local INBOX %q", s)
	}
}

// TestFailuresRetriedOthersGoOn: a bad password and an unreachable host
// are logged and retried; a working account is pulled all the while, and
// the fixed account is pulled once it is fixed.
func TestFailuresRetriedOthersGoOn(t *testing.T) {
	t.Parallel()
	rem := newRemote(t, remoteOptions{})
	other := newRemote(t, remoteOptions{})
	l := newLocal(t, 0)
	rem.add(t, mail("good"))
	other.add(t, mail("after the fix"))
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()

	good := account(rem)
	good.Interval = 20 * time.Millisecond
	bad := account(other)
	bad.Interval, bad.Password = 20*time.Millisecond, "wrong-password"
	gone := account(rem)
	gone.Interval, gone.Host = 20*time.Millisecond, closed.Addr().String()
	r := l.runner(t)
	r.opts.MaxBackoff = 40 * time.Millisecond
	r.Set([]Account{bad, gone, good})

	waitFor(t, "the good account", func() bool { return len(l.bodies(t, "INBOX")) == 1 })
	rem.add(t, mail("good again"))
	waitFor(t, "retries", func() bool {
		logs := l.logs.String()
		return strings.Count(logs, "login:") >= 3 && strings.Count(logs, "connect:") >= 3 && len(l.bodies(t, "INBOX")) == 2
	})
	if strings.Contains(l.logs.String(), "wrong-password") || strings.Contains(l.logs.String(), remotePass) {
		t.Fatal("a password was logged")
	}

	fixed := bad
	fixed.Password = remotePass
	r.Set([]Account{fixed, good})
	waitFor(t, "the fixed account", func() bool { return len(l.bodies(t, "INBOX")) == 3 })
	if s := subjects(l.bodies(t, "INBOX")); !slices.Equal(s, []string{"good", "good again", "after the fix"}) {
		t.Fatalf("local INBOX %q", s)
	}
}

// TestCloseIsPrompt: Close ends a round waiting on a server that never
// answers, and Set does not start an account twice.
func TestCloseIsPrompt(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	l := newLocal(t, 0)
	r, err := New(Options{Store: l.store, Filer: l.agent, Logger: l.logger(), Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a := Account{Mailbox: "anna", Host: ln.Addr().String(), Security: "none", Username: "u", Password: "p", Folder: "INBOX", Into: "INBOX", Interval: time.Hour}
	r.Set([]Account{a, a})
	conn := <-accepted
	defer conn.Close()
	start := time.Now()
	r.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case <-accepted:
		t.Fatal("the account was started twice")
	default:
	}
	if !strings.Contains(l.logs.String(), "listed twice") {
		t.Fatal("duplicate account not logged")
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{5 * time.Minute, 1, 5 * time.Minute},
		{5 * time.Minute, 2, 10 * time.Minute},
		{5 * time.Minute, 4, 40 * time.Minute},
		{5 * time.Minute, 5, time.Hour},
		{5 * time.Minute, 500, time.Hour},
		{2 * time.Hour, 3, 2 * time.Hour},
	} {
		if got := backoff(tc.interval, tc.failures, time.Hour); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.interval, tc.failures, got, tc.want)
		}
	}
}
