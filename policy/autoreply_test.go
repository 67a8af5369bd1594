package policy

import (
	"testing"
	"time"
)

// replyDirectory has anna away from 1 to 10 January with a reply for
// contacts, groups with and without send_auto_replies, and fwd, who
// forwards to anna.
func replyDirectory(t testing.TB, change func(*AutoReply)) *Directory {
	t.Helper()
	anna := user("anna", "support@contoso.test")
	anna.Contacts = []string{"boss@partner.example"}
	anna.AutoReply = &AutoReply{
		Enabled: true, Start: day(1), End: day(10),
		Internal: "I am away.", External: "Thank you for your mail.", ExternalAudience: AudienceContacts,
	}
	if change != nil {
		change(anna.AutoReply)
	}
	replying := group("replying", "anna@contoso.test")
	replying.SendAutoReplies = true
	outer := group("outer", "quiet@contoso.test")
	outer.SendAutoReplies = true
	return mustDir(t, []Mailbox{anna, user("bo"), forwarding(user("fwd"), false, "anna@contoso.test")}, []Group{
		replying, group("quiet", "anna@contoso.test"), outer, group("quietfwd", "fwd@contoso.test"),
	})
}

func TestAutoReplyWhenAndWhom(t *testing.T) {
	t.Parallel()
	contact := "boss@partner.example"
	tests := []struct {
		name   string
		change func(*AutoReply)
		in     Inbound
		want   string // reply body; "" = no reply
	}{
		{"contact, external text", nil, Inbound{From: contact}, "Thank you for your mail."},
		{"contact with subaddress and case", nil, Inbound{From: "Boss+x@Partner.example"}, "Thank you for your mail."},
		{"stranger, audience contacts", nil, Inbound{From: "stranger@fabrikam.example"}, ""},
		{"stranger, audience all", func(a *AutoReply) { a.ExternalAudience = AudienceAll }, Inbound{From: "stranger@fabrikam.example"}, "Thank you for your mail."},
		{"contact, audience none", func(a *AutoReply) { a.ExternalAudience = AudienceNone }, Inbound{From: contact}, ""},
		{"no external text", func(a *AutoReply) { a.ExternalAudience, a.External = AudienceAll, "" }, Inbound{From: contact}, ""},
		{"internal sender", nil, Inbound{From: "bo@contoso.test", Authenticated: "bo"}, "I am away."},
		{"internal sender needs no contact", func(a *AutoReply) { a.ExternalAudience = AudienceNone }, Inbound{From: "bo@contoso.test", Authenticated: "bo"}, "I am away."},
		{"local From without login is external", nil, Inbound{From: "bo@contoso.test"}, ""},
		{"internal sender, no internal text", func(a *AutoReply) { a.Internal = "" }, Inbound{From: "bo@contoso.test", Authenticated: "bo"}, ""},
		{"disabled", func(a *AutoReply) { a.Enabled = false }, Inbound{From: contact}, ""},
		{"before the window", nil, Inbound{From: contact, Now: day(1).Add(-time.Second)}, ""},
		{"at the start", nil, Inbound{From: contact, Now: day(1)}, "Thank you for your mail."},
		{"at the end", nil, Inbound{From: contact, Now: day(10)}, ""},
		{"no window", func(a *AutoReply) { a.Start, a.End = time.Time{}, time.Time{} }, Inbound{From: contact, Now: day(30)}, "Thank you for your mail."},
		{"open end", func(a *AutoReply) { a.End = time.Time{} }, Inbound{From: contact, Now: day(30)}, "Thank you for your mail."},
		{"null sender", nil, Inbound{From: ""}, ""},
		{"MAILER-DAEMON", nil, Inbound{From: "MAILER-DAEMON@fabrikam.example"}, ""},
		{"mailer-daemon any case", func(a *AutoReply) { a.ExternalAudience = AudienceAll }, Inbound{From: "Mailer-Daemon@fabrikam.example"}, ""},
		{"Auto-Submitted auto-generated", nil, Inbound{From: contact, Header: Header{AutoSubmitted: "auto-generated"}}, ""},
		{"Auto-Submitted auto-replied", nil, Inbound{From: contact, Header: Header{AutoSubmitted: "auto-replied; owner=x"}}, ""},
		{"Auto-Submitted no", nil, Inbound{From: contact, Header: Header{AutoSubmitted: " No "}}, "Thank you for your mail."},
		{"Precedence bulk", nil, Inbound{From: contact, Header: Header{Precedence: "bulk"}}, ""},
		{"Precedence list", nil, Inbound{From: contact, Header: Header{Precedence: "List"}}, ""},
		{"Precedence junk", nil, Inbound{From: contact, Header: Header{Precedence: "junk"}}, ""},
		{"Precedence first-class", nil, Inbound{From: contact, Header: Header{Precedence: "first-class"}}, "Thank you for your mail."},
		{"List-Id", nil, Inbound{From: contact, Header: Header{ListID: "<news.partner.example>"}}, ""},
		{"from the mailbox itself", func(a *AutoReply) { a.ExternalAudience = AudienceAll }, Inbound{From: "anna@contoso.test", Authenticated: "anna"}, ""},
		{"from its alias", func(a *AutoReply) { a.ExternalAudience = AudienceAll }, Inbound{From: "Support+x@contoso.test"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := replyDirectory(t, tt.change)
			in := tt.in
			in.Recipients = []string{"anna@contoso.test"}
			if in.Now.IsZero() {
				in.Now = day(5)
			}
			replies := d.Plan(in).AutoReplies
			got := ""
			if len(replies) > 1 {
				t.Fatalf("%d replies", len(replies))
			}
			// A reply that depends on the address book is not sent to
			// anyone whom the book does not list; these books are empty.
			if len(replies) == 1 && !replies[0].IfContact {
				got = replies[0].Body
			}
			if got != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
		})
	}
}

// A stranger under audience "contacts" is left to the address book; a
// contact from the file is not.
func TestAutoReplyAsksTheAddressBook(t *testing.T) {
	t.Parallel()
	d := replyDirectory(t, nil)
	for _, tt := range []struct {
		from      string
		ifContact bool
	}{{"stranger@fabrikam.example", true}, {"boss@partner.example", false}} {
		replies := d.Plan(Inbound{From: tt.from, Recipients: []string{"anna@contoso.test"}, Now: day(5)}).AutoReplies
		if len(replies) != 1 || replies[0].IfContact != tt.ifContact {
			t.Errorf("%s: replies %+v, want one with IfContact %v", tt.from, replies, tt.ifContact)
		}
	}
}

func TestAutoReplyPaths(t *testing.T) {
	t.Parallel()
	d := replyDirectory(t, func(a *AutoReply) { a.ExternalAudience = AudienceAll })
	tests := []struct {
		name  string
		rcpts []string
		want  int // replies from anna
	}{
		{"to the mailbox", []string{"anna@contoso.test"}, 1},
		{"to an alias", []string{"support@contoso.test"}, 1},
		{"to a subaddress", []string{"anna+x@contoso.test"}, 1},
		{"to several of its addresses", []string{"anna@contoso.test", "support@contoso.test"}, 1},
		{"through a group with send_auto_replies", []string{"replying@contoso.test"}, 1},
		{"through a group without", []string{"quiet@contoso.test"}, 0},
		{"through a replying group holding a quiet one", []string{"outer@contoso.test"}, 0},
		{"directly and through a quiet group", []string{"quiet@contoso.test", "anna@contoso.test"}, 1},
		{"forwarded to it", []string{"fwd@contoso.test"}, 1},
		{"forwarded from a quiet group's member", []string{"quietfwd@contoso.test"}, 0},
		{"to someone else", []string{"bo@contoso.test"}, 0},
	}
	for _, tt := range tests {
		p := d.Plan(Inbound{From: "x@fabrikam.example", Recipients: tt.rcpts, Authenticated: "bo", Now: day(5)})
		if len(p.AutoReplies) != tt.want {
			t.Errorf("%s: %d replies, want %d: %+v", tt.name, len(p.AutoReplies), tt.want, p.AutoReplies)
		}
		for _, r := range p.AutoReplies {
			if r.MailboxID != "anna" || r.From != "anna@contoso.test" || r.To != "x@fabrikam.example" {
				t.Errorf("%s: reply %+v", tt.name, r)
			}
		}
	}
}

func TestAutoReplyContent(t *testing.T) {
	t.Parallel()
	in := Inbound{
		From: "Boss@Partner.example", Recipients: []string{"anna@contoso.test"}, Now: day(5),
		Header: Header{Subject: "Budget\r\n 2027", MessageID: "<m2@partner.example>", References: "<m0@partner.example>\r\n <m1@partner.example>"},
	}
	reply := func(t *testing.T, change func(*AutoReply), in Inbound) AutoReplyPlan {
		t.Helper()
		replies := replyDirectory(t, change).Plan(in).AutoReplies
		if len(replies) != 1 {
			t.Fatalf("%d replies", len(replies))
		}
		return replies[0]
	}
	r := reply(t, nil, in)
	want := AutoReplyPlan{
		MailboxID: "anna", From: "anna@contoso.test", To: "Boss@Partner.example",
		Subject: "Automatic reply: Budget 2027", Body: "Thank you for your mail.",
		InReplyTo: "<m2@partner.example>", References: "<m0@partner.example> <m1@partner.example> <m2@partner.example>",
		TextKey: r.TextKey,
	}
	if r != want {
		t.Errorf("reply\n%+v\nwant\n%+v", r, want)
	}
	if r.TextKey == "" {
		t.Error("empty TextKey")
	}

	other := in
	other.Header = Header{Subject: "Something else"}
	r2 := reply(t, nil, other)
	if r2.TextKey != r.TextKey {
		t.Error("TextKey changed with the original's subject")
	}
	if r2.Subject != "Automatic reply: Something else" || r2.References != "" || r2.InReplyTo != "" {
		t.Errorf("reply to a message without ids: %+v", r2)
	}
	if r3 := reply(t, func(a *AutoReply) { a.Subject = "Out of office" }, in); r3.Subject != "Out of office" || r3.TextKey == r.TextKey {
		t.Errorf("custom subject: %q, key %q (was %q)", r3.Subject, r3.TextKey, r.TextKey)
	}
	if r4 := reply(t, func(a *AutoReply) { a.External = "Back soon." }, in); r4.TextKey == r.TextKey {
		t.Error("TextKey did not change with the text")
	}
	noSubject := in
	noSubject.Header.Subject = ""
	if r5 := reply(t, nil, noSubject); r5.Subject != "Automatic reply" {
		t.Errorf("subject without original: %q", r5.Subject)
	}
}
