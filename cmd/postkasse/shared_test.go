package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

const sharedConfig = `
[user.erik]
address  = "erik@contoso.test"
password = "` + boHash + `"

[user.dora]
address  = "dora@contoso.test"
password = "` + carlHash + `"

[shared.info]
address = "info@contoso.test"
name    = "Contoso Info"
aliases = ["kontakt@contoso.test"]
members = ["anna@contoso.test", "bo@contoso.test"]

[shared.info.grants]
"carl@contoso.test" = ["read"]
"erik@contoso.test" = ["send_on_behalf"]
`

const infoInbox = "Shared/info@contoso.test/INBOX"

func TestSharedMailboxTeamwork(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sharedConfig)
	for _, rcpt := range []string{"info@contoso.test", "kontakt@contoso.test"} {
		if err := ts.send("client@example.org", []string{rcpt}, message("client@example.org", rcpt, "question via "+rcpt, "?")); err != nil {
			t.Fatal(err)
		}
	}
	updates := make(chan string, 16)
	bo := ts.login("bo@contoso.test", "bo-secret", &imapclient.UnilateralDataHandler{
		Expunge: func(uint32) { updates <- "expunge" },
		Fetch: func(msg *imapclient.FetchMessageData) {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if f, ok := item.(imapclient.FetchItemDataFlags); ok && slices.Contains(f.Flags, goimap.FlagSeen) {
					updates <- "seen"
				}
			}
		},
	})
	sel, err := bo.Select(infoInbox, nil).Wait()
	if err != nil || sel.NumMessages != 2 {
		t.Fatalf("bo selects %s: %+v %v", infoInbox, sel, err)
	}
	idle, err := bo.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	anna := ts.login("anna@contoso.test", "anna-secret", nil)
	if sel, err := anna.Select(infoInbox, nil).Wait(); err != nil || sel.NumMessages != 2 {
		t.Fatalf("anna selects %s: %+v %v", infoInbox, sel, err)
	}
	if err := anna.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagSeen, goimap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := anna.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seen", "expunge"} {
		select {
		case got := <-updates:
			if got != want {
				t.Fatalf("bo got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("bo saw no %q in IDLE", want)
		}
	}
}

func TestSendAsSharedMailbox(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sharedConfig)
	reply := "From: Contoso Info <info@contoso.test>\nTo: bo@contoso.test\nSubject: Re: question\n\nanswer\n"
	if err := ts.submit("anna@contoso.test", "anna-secret", "info@contoso.test", []string{"bo@contoso.test"}, reply); err != nil {
		t.Fatalf("member sends as info@: %v", err)
	}
	bo := ts.login("bo@contoso.test", "bo-secret", nil)
	if _, err := bo.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := bo.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.From[0].Addr() != "info@contoso.test" || len(msgs[0].Envelope.Sender) > 0 && msgs[0].Envelope.Sender[0].Addr() != "info@contoso.test" {
		t.Fatalf("recipient sees %+v (%v)", msgs, err)
	}
	sent, err := bo.Select("Shared/info@contoso.test/Sent", nil).Wait()
	if err != nil || sent.NumMessages != 1 {
		t.Fatalf("info's Sent: %+v %v", sent, err)
	}
	msgs, _ = bo.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{Flags: true}).Collect()
	if !slices.Contains(msgs[0].Flags, goimap.FlagSeen) {
		t.Fatalf("sent copy flags %v", msgs[0].Flags)
	}

	for _, tc := range []struct {
		name, user, pass, mailFrom, header, want string
	}{
		{"non-member as info", "carl@contoso.test", "carl-secret", "info@contoso.test", "From: info@contoso.test\n", "<info@contoso.test>"},
		{"member with foreign MAIL FROM", "anna@contoso.test", "anna-secret", "bo@contoso.test", "From: info@contoso.test\n", "<bo@contoso.test>"},
		{"member with arbitrary From", "anna@contoso.test", "anna-secret", "anna@contoso.test", "From: ceo@bigbank.example\n", "<ceo@bigbank.example>"},
		{"on behalf without Sender", "erik@contoso.test", "bo-secret", "erik@contoso.test", "From: info@contoso.test\n", "<info@contoso.test>"},
	} {
		err := ts.submit(tc.user, tc.pass, tc.mailFrom, []string{"bo@contoso.test"}, tc.header+"Subject: x\n\nx\n")
		if smtpCode(err) != "550 5.7.1" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 550 5.7.1 naming %s", tc.name, err, tc.want)
		}
	}
	// A sender the user may not use is refused at MAIL FROM, before the
	// message is uploaded.
	c, err := gosmtp.Dial(ts.sub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "anna@contoso.test", "anna-secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("bo@contoso.test", nil); smtpCode(err) != "550 5.7.1" || !strings.Contains(err.Error(), "<bo@contoso.test>") {
		t.Errorf("MAIL FROM someone else: %v, want 550 5.7.1 naming bo", err)
	}
	if err := c.Mail("info@contoso.test", nil); err != nil {
		t.Errorf("MAIL FROM the shared mailbox of a member: %v", err)
	}
	onBehalf := "From: info@contoso.test\nSender: erik@contoso.test\nSubject: on behalf\n\nx\n"
	if err := ts.submit("erik@contoso.test", "bo-secret", "erik@contoso.test", []string{"bo@contoso.test"}, onBehalf); err != nil {
		t.Fatalf("send on behalf: %v", err)
	}
	// Submission needs AUTH, and shared mailboxes cannot log in.
	if got := smtpCode(sendMail(ts.sub, nil, "anna@contoso.test", []string{"bo@contoso.test"}, "Subject: x\n\nx\n")); !strings.HasPrefix(got, "530") && !strings.HasPrefix(got, "502") {
		t.Errorf("unauthenticated submission: %s", got)
	}
	if got := smtpCode(ts.submit("info@contoso.test", "anything", "info@contoso.test", []string{"bo@contoso.test"}, "Subject: x\n\nx\n")); got != "535 5.7.8" {
		t.Errorf("shared mailbox AUTH: %s", got)
	}
}

func TestSharedMailboxLogins(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sharedConfig)
	if err := ts.send("client@example.org", []string{"info@contoso.test"}, message("client@example.org", "info@contoso.test", "hello", "x")); err != nil {
		t.Fatal(err)
	}
	tryLogin := func(user, pass string) error {
		c, err := imapclient.DialInsecure(ts.imap, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(user, pass).Wait(); err != nil {
			return err
		}
		sel, err := c.Select("INBOX", nil).Wait()
		if err == nil && sel.NumMessages != 1 {
			t.Errorf("%s: INBOX has %d messages, want info's 1", user, sel.NumMessages)
		}
		return err
	}
	for _, user := range []string{"info@contoso.test*anna@contoso.test", `anna@contoso.test\info@contoso.test`} {
		if err := tryLogin(user, "anna-secret"); err != nil {
			t.Errorf("%s: %v", user, err)
		}
	}
	for _, tc := range []struct{ user, pass string }{
		{"info@contoso.test", "anna-secret"},
		{"info@contoso.test", ""},
		{"info@contoso.test*dora@contoso.test", "carl-secret"},
		{`dora@contoso.test\info@contoso.test`, "carl-secret"},
		{"info@contoso.test*anna@contoso.test", "wrong"},
	} {
		if err := tryLogin(tc.user, tc.pass); err == nil {
			t.Errorf("%s logged in", tc.user)
		}
	}
	c, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("info@contoso.test", "anna@contoso.test", "anna-secret")); err != nil {
		t.Fatalf("PLAIN with authzid: %v", err)
	}
	if sel, err := c.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != 1 {
		t.Fatalf("PLAIN authzid INBOX: %+v %v", sel, err)
	}
	d, _ := imapclient.DialInsecure(ts.imap, nil)
	defer d.Close()
	if err := d.Authenticate(sasl.NewPlainClient("info@contoso.test", "dora@contoso.test", "carl-secret")); err == nil {
		t.Fatal("non-member PLAIN authzid accepted")
	}
}

func TestQuotaAndApps(t *testing.T) {
	t.Parallel()
	ts := startServer(t, `
[user.small]
address = "small@contoso.test"
password = "`+annaHash+`"
quota = "3KB"

[user.mailonly]
address = "mailonly@contoso.test"
password = "`+annaHash+`"
apps = ["smtp"]

[user.readonly]
address = "readonly@contoso.test"
password = "`+annaHash+`"
apps = ["imap"]
`)
	filler := message("zoe@example.org", "small@contoso.test", "filler", strings.Repeat("0123456789\n", 250))
	if err := ts.send("zoe@example.org", []string{"small@contoso.test"}, filler); err != nil {
		t.Fatal(err)
	}
	// Passing 90% of the quota brought one warning.
	c := ts.login("small@contoso.test", "anna-secret", nil)
	if sel, _ := c.Select("INBOX", nil).Wait(); sel.NumMessages != 2 {
		t.Fatalf("small has %d messages, want the filler and one quota warning", sel.NumMessages)
	}
	refused, err := sendPartial(ts.smtp, "zoe@example.org", []string{"small@contoso.test", "bo@contoso.test"}, message("zoe@example.org", "x", "more", "x"))
	if err != nil || !slices.Equal(refused, []string{"small@contoso.test: 552 5.2.2"}) {
		t.Fatalf("full mailbox: refused %v, err %v", refused, err)
	}
	bo := ts.login("bo@contoso.test", "bo-secret", nil)
	if sel, _ := bo.Select("INBOX", nil).Wait(); sel.NumMessages != 1 {
		t.Fatalf("bo got %d messages", sel.NumMessages)
	}
	app := c.Append("INBOX", 4000, nil)
	app.Write([]byte(strings.Repeat("x", 3998) + "\r\n"))
	app.Close()
	if _, err := app.Wait(); err == nil || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("APPEND over quota: %v", err)
	}

	mo, _ := imapclient.DialInsecure(ts.imap, nil)
	defer mo.Close()
	if err := mo.Login("mailonly@contoso.test", "anna-secret").Wait(); err == nil || !strings.Contains(err.Error(), "IMAP is disabled") {
		t.Fatalf("IMAP for an smtp-only user: %v", err)
	}
	if err := ts.submit("mailonly@contoso.test", "anna-secret", "mailonly@contoso.test", []string{"bo@contoso.test"}, "From: mailonly@contoso.test\nSubject: s\n\nx\n"); err != nil {
		t.Fatalf("smtp-only user submits: %v", err)
	}
	if got := smtpCode(ts.submit("readonly@contoso.test", "anna-secret", "readonly@contoso.test", []string{"bo@contoso.test"}, "From: readonly@contoso.test\n\nx\n")); got != "535 5.7.8" {
		t.Fatalf("submission for an imap-only user: %s", got)
	}
	ts.login("readonly@contoso.test", "anna-secret", nil)
}

// sendPartial sends to every recipient the server accepts, as a real
// client does when some RCPTs are refused, and returns the refused ones.
func sendPartial(addr, from string, to []string, msg string) ([]string, error) {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		return nil, err
	}
	if err := c.Mail(from, nil); err != nil {
		return nil, err
	}
	var refused []string
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			refused = append(refused, rcpt+": "+smtpCode(err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return refused, err
	}
	io.WriteString(w, strings.ReplaceAll(msg, "\n", "\r\n"))
	if err := w.Close(); err != nil {
		return refused, err
	}
	return refused, c.Quit()
}

// TestUnknownUserLoginTakesAsLong: a login for an address that does not
// exist is refused no faster than one with a wrong password, so the reply's
// timing does not tell which addresses exist.
func TestUnknownUserLoginTakesAsLong(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sharedConfig)
	c, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fastest := func(user string) time.Duration {
		best := time.Hour
		for range 2 {
			start := time.Now()
			if err := c.Login(user, "wrong").Wait(); err == nil {
				t.Fatalf("%s logged in with a wrong password", user)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong := fastest("anna@contoso.test")
	unknown := fastest("nobody@contoso.test")
	if unknown < wrong/3 {
		t.Fatalf("unknown address refused in %v, wrong password in %v", unknown, wrong)
	}
}

// TestRefusedLoginsWait: a refused login is answered only after the
// failure delay, over IMAP and on submission; a good one is not held back.
func TestRefusedLoginsWait(t *testing.T) {
	t.Parallel()
	const delay = 700 * time.Millisecond
	ts := startServerWith(t, "", serverOptions{authFailureDelay: delay})
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	c, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad, err := timed(func() error { return c.Login("anna@contoso.test", "wrong").Wait() })
	if err == nil || bad < delay {
		t.Errorf("IMAP wrong password answered after %v (%v), want at least %v", bad, err, delay)
	}
	// Both pay one bcrypt check; only the refusal waits on top of it.
	if good, err := timed(func() error { return c.Login("anna@contoso.test", "anna-secret").Wait() }); err != nil || good >= bad {
		t.Errorf("IMAP good password answered after %v (%v), the wrong one after %v", good, err, bad)
	}
	if d, err := timed(func() error {
		return ts.submit("anna@contoso.test", "wrong", "anna@contoso.test", []string{"bo@contoso.test"}, "Subject: x\n\nx\n")
	}); smtpCode(err) != "535 5.7.8" || d < delay {
		t.Errorf("AUTH with a wrong password answered after %v (%v), want 535 after at least %v", d, err, delay)
	}
}
