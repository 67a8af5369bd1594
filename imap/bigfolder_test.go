package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postkasse.dev/postkasse/store"
)

// TestSelectAnswersMatchFetch: what SELECT and STATUS answer (from the
// store's folder index) equals what the messages' own flags say, as
// UID FETCH 1:* (FLAGS) shows them, for a shared-\Seen and a per-user-\Seen
// viewer of one folder after flag changes, keywords and expunges.
func TestSelectAnswersMatchFetch(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.dir.grant("anna", "info", false, true)
	ts.dir.grant("bo", "info", false, false)
	const n = 600
	d := &store.Delivery{Body: []byte("Subject: bulk\r\n\r\nx\r\n")}
	for i := range n {
		var flags []string
		if i%4 == 0 {
			flags = []string{store.FlagSeen}
		}
		d.Targets = append(d.Targets, store.Target{Account: "info", Folder: "INBOX", Flags: flags})
	}
	if _, err := ts.store.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	const mailbox = "Shared/info@contoso.test/INBOX"
	anna, bo := ts.login(t, "anna"), ts.login(t, "bo")
	for _, c := range []*imapclient.Client{anna, bo} {
		if _, err := c.Select(mailbox, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	store := func(c *imapclient.Client, uids string, op goimap.StoreFlagsOp, flags ...goimap.Flag) {
		t.Helper()
		var set goimap.UIDSet
		for _, r := range strings.Split(uids, ",") {
			var lo, hi uint32
			if _, err := fmt.Sscanf(r, "%d:%d", &lo, &hi); err != nil {
				hi = lo
			}
			set.AddRange(goimap.UID(lo), goimap.UID(hi))
		}
		if err := c.Store(set, &goimap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	store(bo, "1:3,10", goimap.StoreFlagsDel, goimap.FlagSeen)
	store(bo, "2,5:9", goimap.StoreFlagsAdd, goimap.FlagSeen, "$Label1")
	store(bo, "20:40", goimap.StoreFlagsAdd, "Project")
	store(bo, "20:39", goimap.StoreFlagsDel, "Project")
	store(anna, "1,3,4,11:13", goimap.StoreFlagsAdd, goimap.FlagSeen)
	store(anna, "5,6,100", goimap.StoreFlagsDel, goimap.FlagSeen)
	store(bo, "7,11,50:80,599", goimap.StoreFlagsAdd, goimap.FlagDeleted)
	if err := bo.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user string
		c          *imapclient.Client
	}{{"anna (own \\Seen)", "anna", anna}, {"bo", "bo", bo}, {"anna again", "anna", ts.login(t, "anna")}} {
		c := tc.c
		if err := c.Unselect().Wait(); err != nil && tc.name != "anna again" {
			t.Fatal(err)
		}
		st, err := c.Status(mailbox, &goimap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		sel, err := c.Select(mailbox, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(goimap.UIDSet{goimap.UIDRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var unseen, firstUnseen uint32
		keywords := map[goimap.Flag]bool{}
		for i, m := range msgs {
			if !slices.Contains(m.Flags, goimap.FlagSeen) {
				unseen++
				if firstUnseen == 0 {
					firstUnseen = uint32(i + 1)
				}
			}
			for _, f := range m.Flags {
				if !strings.HasPrefix(string(f), `\`) {
					keywords[f] = true
				}
			}
		}
		got := fmt.Sprintf("messages %d/%d unseen %d first %d uidnext %d/%d", sel.NumMessages, *st.NumMessages, *st.NumUnseen, rawFirstUnseen(t, ts.addr, tc.user, mailbox), sel.UIDNext, st.UIDNext)
		want := fmt.Sprintf("messages %d/%d unseen %d first %d uidnext %d/%d", len(msgs), len(msgs), unseen, firstUnseen, n+1, n+1)
		if got != want {
			t.Errorf("%s: SELECT/STATUS say %s, the messages %s", tc.name, got, want)
		}
		for kw := range keywords {
			if !slices.Contains(sel.Flags, kw) {
				t.Errorf("%s: FLAGS %v lack %s", tc.name, sel.Flags, kw)
			}
		}
		for _, f := range sel.Flags {
			if !strings.HasPrefix(string(f), `\`) && !keywords[f] {
				t.Errorf("%s: FLAGS %v list %s, on no message", tc.name, sel.Flags, f)
			}
		}
	}
}

// rawFirstUnseen SELECTs a folder on a connection of its own and returns
// the sequence number of SELECT's [UNSEEN n] (0 without one), which the
// IMAP client library does not report.
func rawFirstUnseen(t *testing.T, addr, user, mailbox string) uint32 {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "a LOGIN %s@contoso.test %s-pw\r\nb SELECT %q\r\n", user, user, mailbox)
	var first uint32
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(line, "[UNSEEN "); i >= 0 {
			fmt.Sscanf(line[i:], "[UNSEEN %d]", &first)
		}
		if strings.HasPrefix(line, "b ") {
			if !strings.HasPrefix(line, "b OK") {
				t.Fatalf("SELECT: %s", line)
			}
			return first
		}
	}
}
