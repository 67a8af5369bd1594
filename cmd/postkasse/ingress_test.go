package main

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

func TestDeliverOverSMTPReadOverIMAP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	msg := "From: Zoe <zoe@example.org>\nTo: anna@contoso.test\nSubject: Hello Anna\nMessage-ID: <m1@example.org>\n" +
		"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain words\n--b\nContent-Type: text/html\n\n<p>html words</p>\n--b--\n"
	if err := ts.send("zoe@example.org", []string{"anna@contoso.test"}, msg); err != nil {
		t.Fatal(err)
	}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	header := &goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, Peek: true}
	html := &goimap.FetchItemBodySection{Part: []int{2}, Peek: true}
	msgs, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{
		Envelope: true, BodyStructure: &goimap.FetchItemBodyStructure{}, Flags: true, RFC822Size: true,
		BodySection: []*goimap.FetchItemBodySection{header, html},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v", err)
	}
	m := msgs[0]
	if m.Envelope.Subject != "Hello Anna" || m.Envelope.From[0].Addr() != "zoe@example.org" {
		t.Fatalf("envelope %+v", m.Envelope)
	}
	if mp, ok := m.BodyStructure.(*goimap.BodyStructureMultiPart); !ok || mp.Subtype != "alternative" || len(mp.Children) != 2 {
		t.Fatalf("bodystructure %#v", m.BodyStructure)
	}
	h := string(m.FindBodySection(header))
	for _, want := range []string{"Delivered-To: anna@contoso.test", "Return-Path: <zoe@example.org>", "Received: from client.example.org", "by mail.contoso.test"} {
		if !strings.Contains(h, want) {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	if got := string(m.FindBodySection(html)); !strings.Contains(got, "<p>html words</p>") {
		t.Errorf("BODY[2] = %q", got)
	}
	if slices.Contains(m.Flags, goimap.FlagSeen) {
		t.Errorf("new message flags %v", m.Flags)
	}
	// Answered from the body's search data (its text signature and its
	// search block), on either backend.
	for _, c2 := range []goimap.SearchCriteria{
		{Body: []string{"html words"}},
		{Text: []string{"PLAIN WORDS"}},
		{Header: []goimap.SearchCriteriaHeaderField{{Key: "Subject", Value: "hello anna"}}},
		{Header: []goimap.SearchCriteriaHeaderField{{Key: "From", Value: "zoe@example"}}},
	} {
		data, err := c.UIDSearch(&c2, nil).Wait()
		if err != nil || !slices.Equal(data.AllUIDs(), []goimap.UID{1}) {
			t.Fatalf("search %+v: %v %v", c2, data, err)
		}
	}
	data, err := c.UIDSearch(&goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "Subject", Value: "hello bo"}}}, nil).Wait()
	if err != nil || len(data.AllUIDs()) != 0 {
		t.Fatalf("search of a subject not there: %v %v", data, err)
	}
}

func TestRecipientRules(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	for _, tc := range []struct {
		rcpt, want, mailbox string
	}{
		{"anna@contoso.test", "ok", "anna"},
		{"support@contoso.test", "ok", "anna"},   // alias
		{"anna+news@contoso.test", "ok", "anna"}, // subaddress
		{"ANNA@Contoso.Test", "ok", "anna"},      // case
		{"nobody@contoso.test", "550 5.1.1", ""},
		{"someone@elsewhere.example", "554 5.7.1", ""},
	} {
		err := ts.send("zoe@example.org", []string{tc.rcpt}, message("zoe@example.org", tc.rcpt, "to "+tc.rcpt, "hi"))
		if got := smtpCode(err); got != tc.want {
			t.Errorf("RCPT %s: %s, want %s", tc.rcpt, got, tc.want)
		}
	}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 4 {
		t.Fatalf("anna has %v messages (%v), want 4", sel, err)
	}
	big := message("zoe@example.org", "anna@contoso.test", "big", strings.Repeat(strings.Repeat("x", 70)+"\n", 1024))
	if got := smtpCode(ts.send("zoe@example.org", []string{"anna@contoso.test"}, big)); got != "552 5.3.4" {
		t.Errorf("oversized message: %s", got)
	}
	long := message("zoe@example.org", "anna@contoso.test", "long line", strings.Repeat("x", 5000))
	if got := smtpCode(ts.send("zoe@example.org", []string{"anna@contoso.test"}, long)); got != "500 5.5.2" {
		t.Errorf("overlong line: %s", got)
	}
}

// rawSMTP runs a transcript: each line is sent and the next reply read.
func rawSMTP(t *testing.T, addr string, lines ...string) []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	readReply := func() string {
		var last string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "read error: " + err.Error()
			}
			last = strings.TrimRight(line, "\r\n")
			if len(last) < 4 || last[3] != '-' {
				return last
			}
		}
	}
	replies := []string{readReply()}
	for _, l := range lines {
		fmt.Fprint(conn, l)
		if strings.HasSuffix(l, "\r\n") || strings.HasSuffix(l, "\n") {
			replies = append(replies, readReply())
		}
	}
	return replies
}

func TestBareLFRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	replies := rawSMTP(t, ts.smtp,
		"EHLO client.example.org\r\n",
		"MAIL FROM:<zoe@example.org>\r\n",
		"RCPT TO:<anna@contoso.test>\r\n",
		"DATA\r\n",
		"Subject: smuggle\r\n\r\nline one\nline two\r\n.\r\n",
		"QUIT\r\n",
	)
	if got := replies[5]; !strings.HasPrefix(got, "550 5.5.2") {
		t.Fatalf("bare LF DATA answered %q (all: %q)", got, replies)
	}
	// The smuggling pattern: a bare-LF dot must not end DATA.
	replies = rawSMTP(t, ts.smtp,
		"EHLO client.example.org\r\n",
		"MAIL FROM:<zoe@example.org>\r\n",
		"RCPT TO:<anna@contoso.test>\r\n",
		"DATA\r\n",
		"Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@example.org>\r\n.\r\n",
		"QUIT\r\n",
	)
	if got := replies[5]; !strings.HasPrefix(got, "550") {
		t.Fatalf("smuggling attempt answered %q", got)
	}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	if sel, _ := c.Select("INBOX", nil).Wait(); sel.NumMessages != 0 {
		t.Fatalf("a bare-LF message was stored (%d)", sel.NumMessages)
	}
	// SIZE is advertised.
	replies = rawSMTP(t, ts.smtp, "EHLO x\r\n", "MAIL FROM:<a@example.org> SIZE=99999999\r\n", "QUIT\r\n")
	if !strings.HasPrefix(replies[2], "552 5.3.4") {
		t.Fatalf("MAIL with SIZE over the limit: %q", replies[2])
	}
}

func TestHundredsOfRecipientsStoreOneBody(t *testing.T) {
	t.Parallel()
	var extra strings.Builder
	var rcpts []string
	for i := range 200 {
		fmt.Fprintf(&extra, "[user.u%d]\naddress = \"u%d@contoso.test\"\npassword = %q\n", i, i, annaHash)
		rcpts = append(rcpts, fmt.Sprintf("u%d@contoso.test", i))
	}
	ts := startServer(t, extra.String())
	if err := ts.send("zoe@example.org", rcpts, message("zoe@example.org", "many@contoso.test", "to all", "once")); err != nil {
		t.Fatal(err)
	}
	count, _, err := blobStats(ts.srv.store)
	if err != nil || count != 1 {
		t.Fatalf("%d bodies stored, want 1 (%v)", count, err)
	}
	c := ts.login("u199@contoso.test", "anna-secret", nil)
	msgs, err := c.Select("INBOX", nil).Wait()
	if err != nil || msgs.NumMessages != 1 {
		t.Fatalf("u199 INBOX: %+v %v", msgs, err)
	}
	body, _ := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if !strings.Contains(string(body[0].FindBodySection(&goimap.FetchItemBodySection{Peek: true})), "Delivered-To: u199@contoso.test") {
		t.Fatal("copy lacks its own Delivered-To")
	}
}

func TestRestartKeepsUIDsAndFlags(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	for i := range 3 {
		if err := ts.send("zoe@example.org", []string{"bo@contoso.test"}, message("zoe@example.org", "bo@contoso.test", fmt.Sprint("m", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.login("bo@contoso.test", "bo-secret", nil)
	before, _ := c.Select("INBOX", nil).Wait()
	c.Store(goimap.SeqSetNum(2), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagFlagged, "$Work"}}, nil).Close()
	c.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close()
	c.Expunge().Close()
	c.Close()
	ts.restart()
	c = ts.login("bo@contoso.test", "bo-secret", nil)
	after, err := c.Select("INBOX", nil).Wait()
	if err != nil || after.UIDValidity != before.UIDValidity || after.NumMessages != 2 {
		t.Fatalf("after restart %+v (before %+v) %v", after, before, err)
	}
	msgs, _ := c.Fetch(goimap.SeqSetNum(1, 2), &goimap.FetchOptions{UID: true, Flags: true}).Collect()
	if msgs[0].UID != 2 || msgs[1].UID != 3 || !slices.Contains(msgs[0].Flags, goimap.FlagFlagged) || !slices.Contains(msgs[0].Flags, "$Work") {
		t.Fatalf("after restart: %+v", msgs)
	}
}
