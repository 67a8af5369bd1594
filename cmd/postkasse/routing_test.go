package main

import (
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

const routingConfig = `
[outbound]
smarthost = "SINK"
smarthost_tls = "none"
retry_after = "200ms"

[user.carl.forward]
to = ["anna@contoso.test"]

[user.dora]
address  = "dora@contoso.test"
password = "` + annaHash + `"

[user.dora.forward]
to = ["dora@home.example"]
keep_copy = true

[user.erin]
address  = "erin@contoso.test"
password = "` + annaHash + `"

[user.erin.forward]
to = ["reject-erin@home.example"]

[user.bo.auto_reply]
enabled  = true
internal = "Away (internal text)"
external = "I am away (external text)"
external_audience = "all"

[shared.info]
address = "info@contoso.test"
members = ["anna@contoso.test"]

[group.team]
address = "team@contoso.test"
members = ["anna@contoso.test", "bo@contoso.test", "info@contoso.test", "inner@contoso.test", "partner@fabrikam.example"]
allow_external_senders = true

[group.inner]
address = "inner@contoso.test"
members = ["anna@contoso.test", "bo@contoso.test"]

[group.closed]
address = "closed@contoso.test"
members = ["anna@contoso.test", "bo@contoso.test"]
`

func startRoutingServer(t *testing.T) (*testServer, *sink) {
	t.Helper()
	sk := newSink(t, "127.0.0.1")
	return startServer(t, strings.ReplaceAll(routingConfig, "SINK", sk.addr)), sk
}

func (ts *testServer) count(user, pass, folder string) uint32 {
	ts.t.Helper()
	c := ts.login(user, pass, nil)
	defer c.Logout()
	st, err := c.Status(folder, &goimap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		ts.t.Fatalf("status %s %s: %v", user, folder, err)
	}
	return *st.NumMessages
}

func TestGroupReachesEveryoneOnce(t *testing.T) {
	t.Parallel()
	ts, sk := startRoutingServer(t)
	if err := ts.send("client@example.org", []string{"team@contoso.test"}, message("client@example.org", "team@contoso.test", "to the team", "hello")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ user, pass, folder string }{
		{"anna@contoso.test", "anna-secret", "INBOX"},
		{"bo@contoso.test", "bo-secret", "INBOX"},
		{"anna@contoso.test", "anna-secret", infoInbox},
	} {
		if n := ts.count(c.user, c.pass, c.folder); n != 1 {
			t.Errorf("%s %s has %d messages, want 1", c.user, c.folder, n)
		}
	}
	if count, _, _ := blobStats(ts.srv.store); count != 1 {
		t.Errorf("%d bodies stored for one group message", count)
	}
	msgs := sk.wait(t, 1)
	if len(msgs[0].To) != 1 || msgs[0].To[0] != "partner@fabrikam.example" || !strings.HasPrefix(msgs[0].From, "SRS0=") || !strings.HasSuffix(msgs[0].From, "@contoso.test") {
		t.Fatalf("external member's copy: from %q to %v", msgs[0].From, msgs[0].To)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(sk.messages()); n != 1 {
		t.Fatalf("bo answered group mail automatically (%d messages at the sink)", n)
	}
}

func TestClosedGroup(t *testing.T) {
	t.Parallel()
	ts, _ := startRoutingServer(t)
	err := ts.send("client@example.org", []string{"closed@contoso.test"}, message("client@example.org", "closed@contoso.test", "spam", "x"))
	if got := smtpCode(err); got != "550 5.7.1" {
		t.Fatalf("outsider to closed group: %s", got)
	}
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"closed@contoso.test"}, "From: anna@contoso.test\nSubject: team news\n\nx\n"); err != nil {
		t.Fatalf("member to closed group: %v", err)
	}
	if n := ts.count("bo@contoso.test", "bo-secret", "INBOX"); n != 1 {
		t.Fatalf("bo has %d messages", n)
	}
}

func TestForwarding(t *testing.T) {
	t.Parallel()
	ts, sk := startRoutingServer(t)
	if err := ts.send("client@example.org", []string{"carl@contoso.test"}, message("client@example.org", "carl@contoso.test", "for carl", "x")); err != nil {
		t.Fatal(err)
	}
	if n := ts.count("carl@contoso.test", "carl-secret", "INBOX"); n != 0 {
		t.Errorf("carl kept %d messages without keep_copy", n)
	}
	if n := ts.count("anna@contoso.test", "anna-secret", "INBOX"); n != 1 {
		t.Errorf("anna got %d forwarded messages", n)
	}
	if err := ts.send("client@example.org", []string{"dora@contoso.test"}, message("client@example.org", "dora@contoso.test", "for dora", "x")); err != nil {
		t.Fatal(err)
	}
	if n := ts.count("dora@contoso.test", "anna-secret", "INBOX"); n != 1 {
		t.Errorf("dora kept %d messages with keep_copy", n)
	}
	msgs := sk.wait(t, 1)
	if msgs[0].To[0] != "dora@home.example" || !strings.HasPrefix(msgs[0].From, "SRS0=") {
		t.Fatalf("external forward: from %q to %v", msgs[0].From, msgs[0].To)
	}
	if !strings.Contains(msgs[0].Data, "Subject: for dora") || !strings.Contains(msgs[0].Data, "Received: from") {
		t.Fatalf("forwarded copy:\n%s", msgs[0].Data)
	}
	// A bounce to the SRS address goes back to the original sender.
	if err := ts.send("", []string{msgs[0].From}, "Subject: bounce\n\nundeliverable\n"); err != nil {
		t.Fatalf("bounce to SRS address: %v", err)
	}
	bounce := sk.wait(t, 2)[1]
	if bounce.To[0] != "client@example.org" || bounce.From != "" {
		t.Fatalf("SRS bounce went from %q to %v", bounce.From, bounce.To)
	}
}

// TestForwardBounceReachesSender: when the far end refuses a forwarded
// message, the bounce, addressed to the SRS envelope sender, reaches the
// original sender.
func TestForwardBounceReachesSender(t *testing.T) {
	t.Parallel()
	ts, sk := startRoutingServer(t)
	if err := ts.send("client@example.org", []string{"erin@contoso.test"}, message("client@example.org", "erin@contoso.test", "for erin", "x")); err != nil {
		t.Fatal(err)
	}
	dsn := sk.wait(t, 1)[0]
	if dsn.From != "" || len(dsn.To) != 1 || dsn.To[0] != "client@example.org" {
		t.Fatalf("bounce went from %q to %v", dsn.From, dsn.To)
	}
	if !strings.Contains(dsn.Data, "multipart/report") || !strings.Contains(dsn.Data, "reject-erin@home.example") {
		t.Fatalf("bounce:\n%s", dsn.Data)
	}
}

func TestAutomaticReplies(t *testing.T) {
	t.Parallel()
	ts, sk := startRoutingServer(t)
	first := "From: client@example.org\nTo: bo@contoso.test\nSubject: question\nMessage-ID: <q1@example.org>\n\n?\n"
	if err := ts.send("client@example.org", []string{"bo@contoso.test"}, first); err != nil {
		t.Fatal(err)
	}
	reply := sk.wait(t, 1)[0]
	for _, want := range []string{"Auto-Submitted: auto-replied", "In-Reply-To: <q1@example.org>", "I am away (external text)", "From: <bo@contoso.test>", "Subject: Automatic reply: question"} {
		if !strings.Contains(reply.Data, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply.Data)
		}
	}
	if reply.From != "" || reply.To[0] != "client@example.org" {
		t.Errorf("reply envelope from %q to %v", reply.From, reply.To)
	}
	second := strings.Replace(first, "q1@", "q2@", 1)
	list := "From: list@example.org\nTo: bo@contoso.test\nSubject: digest\nPrecedence: list\n\nx\n"
	if err := ts.send("client@example.org", []string{"bo@contoso.test"}, second); err != nil {
		t.Fatal(err)
	}
	if err := ts.send("list@example.org", []string{"bo@contoso.test"}, list); err != nil {
		t.Fatal(err)
	}
	ts.restart()
	if err := ts.send("client@example.org", []string{"bo@contoso.test"}, strings.Replace(first, "q1@", "q3@", 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(sk.messages()); n != 1 {
		t.Fatalf("%d automatic replies, want 1 (one per sender per 7 days, none to lists, also across a restart)", n)
	}
	// A colleague gets the internal text, delivered locally.
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"bo@contoso.test"}, "From: anna@contoso.test\nSubject: lunch?\n\n?\n"); err != nil {
		t.Fatal(err)
	}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || !strings.Contains(string(msgs[0].FindBodySection(&goimap.FetchItemBodySection{Peek: true})), "Away (internal text)") {
		t.Fatalf("internal reply: %v %v", msgs, err)
	}
}
