package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestConnectedAccount: a connected account added by reload is pulled
// every interval into anna's INBOX, each message once, also across a
// restart; the remote copy stays unread. The remote server is a second
// postkasse, where bo's mailbox plays the other account.
func TestConnectedAccount(t *testing.T) {
	t.Parallel()
	remote := startServer(t, "")
	sendRemote := func(subject string) {
		t.Helper()
		if err := remote.send("someone@example.org", []string{"bo@contoso.test"}, message("someone@example.org", "bo@contoso.test", subject, "pulled in")); err != nil {
			t.Fatal(err)
		}
	}
	sendRemote("from afar")
	ts := startServer(t, "")
	ts.writeConfig(baseConfig + fmt.Sprintf(`
[[user.anna.connected]]
host     = %q
security = "none"
username = "bo@contoso.test"
password = "bo-secret"
interval = "100ms"
`, remote.imap))
	if err := ts.srv.reload(ts.cfgPath); err != nil {
		t.Fatal(err)
	}

	anna := ts.login("anna@contoso.test", "anna-secret", nil)
	waitMessages(t, anna, 1)
	sendRemote("second")
	waitMessages(t, anna, 2)
	time.Sleep(300 * time.Millisecond) // a few more intervals
	ts.restart()
	time.Sleep(300 * time.Millisecond)
	anna = ts.login("anna@contoso.test", "anna-secret", nil)
	waitMessages(t, anna, 2)

	if _, err := anna.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &goimap.FetchItemBodySection{Peek: true}
	msgs, err := anna.Fetch(goimap.SeqSetNum(1, 2), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	for i, subject := range []string{"from afar", "second"} {
		body := string(msgs[i].FindBodySection(section))
		if !strings.HasPrefix(body, "Delivered-To: anna@contoso.test\r\nReceived: from 127.0.0.1\r\n\tby mail.contoso.test (postkasse) with IMAP") ||
			!strings.Contains(body, "Delivered-To: bo@contoso.test\r\n") || !strings.Contains(body, "Subject: "+subject+"\r\n") {
			t.Fatalf("message %d as pulled:\n%s", i+1, body)
		}
	}

	bo := remote.login("bo@contoso.test", "bo-secret", nil)
	st, err := bo.Status("INBOX", &goimap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
	if err != nil || *st.NumMessages != 2 || *st.NumUnseen != 2 {
		t.Fatalf("remote INBOX after pulling: %+v %v", st, err)
	}
}

// waitMessages waits until the INBOX holds want messages; more is a
// failure.
func waitMessages(t *testing.T, c *imapclient.Client, want uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status("INBOX", &goimap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		switch n := *st.NumMessages; {
		case n > want:
			t.Fatalf("INBOX has %d messages, want %d", n, want)
		case n == want:
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("INBOX has %d messages after 10s, want %d", *st.NumMessages, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
