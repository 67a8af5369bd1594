package policy

import (
	"slices"
	"testing"
	"time"
)

// addr is the test domain's address for a local part.
func addr(local string) string { return local + "@contoso.test" }

func user(id string, aliases ...string) Mailbox {
	return Mailbox{ID: id, Kind: KindUser, Address: addr(id), Aliases: aliases, IMAP: true, SMTP: true}
}

func shared(id string, members ...string) Mailbox {
	return Mailbox{ID: id, Kind: KindShared, Address: addr(id), Members: members, SentCopy: true}
}

func group(id string, members ...string) Group {
	return Group{ID: id, Address: addr(id), Members: members}
}

func forwarding(mb Mailbox, keep bool, to ...string) Mailbox {
	mb.Forward = &Forward{To: to, KeepCopy: keep}
	return mb
}

func mustDir(t testing.TB, mailboxes []Mailbox, groups []Group) *Directory {
	t.Helper()
	d, err := NewDirectory(DirectoryOptions{
		Domains:   []string{"contoso.test", "fourthcoffee.test"},
		Mailboxes: mailboxes,
		Groups:    groups,
	})
	if err != nil {
		t.Fatalf("NewDirectory: %v", err)
	}
	return d
}

// testDirectory is the organisation most tests use:
//
//   - info (shared): members anna and group helpdesk (finn, and group l2
//     with hanna); grants carl read, dora full, erik send_on_behalf, bo
//     (by his alias) read, group readers (ivy) read.
//   - billing (shared): member carl.
//   - sales (group, closed, no auto-replies): bo, info, helpdesk and an
//     external partner twice, in two spellings.
//   - news (group, open, auto-replies): anna, bo, sales.
//   - annaplus has the address anna+special@, which must not be taken for
//     a subaddress of anna.
func testDirectory(t testing.TB) *Directory {
	t.Helper()
	anna := user("anna", "support@contoso.test", "Anna@FourthCoffee.test")
	anna.Contacts = []string{"Boss@Partner.example"}
	annaPlus := user("annaplus")
	annaPlus.Address = "anna+special@contoso.test"
	info := shared("info", "anna@contoso.test", "helpdesk@contoso.test")
	info.Aliases = []string{"kontakt@contoso.test"}
	info.Grants = map[string]Rights{
		"carl@contoso.test":    RightRead,
		"dora@contoso.test":    RightFull,
		"erik@contoso.test":    RightSendOnBehalf,
		"bo.b@contoso.test":    RightRead,
		"readers@contoso.test": RightRead,
	}
	sales := group("sales", "bo@contoso.test", "info@contoso.test", "helpdesk@contoso.test",
		"partner@fabrikam.example", "Partner@FABRIKAM.example")
	news := group("news", "anna@contoso.test", "bo@contoso.test", "sales@contoso.test")
	news.AllowExternalSenders, news.SendAutoReplies = true, true
	return mustDir(t, []Mailbox{
		anna, user("bo", "bo.b@contoso.test"), user("carl"), user("dora"), user("erik"),
		user("finn"), user("gus"), user("hanna"), user("ivy"), annaPlus,
		info, shared("billing", "carl@contoso.test"),
	}, []Group{
		group("helpdesk", "finn@contoso.test", "l2@contoso.test"),
		group("l2", "hanna@contoso.test"),
		group("readers", "ivy@contoso.test"),
		sales, news,
	})
}

func ids(mailboxes []*Mailbox) []string {
	var out []string
	for _, mb := range mailboxes {
		out = append(out, mb.ID)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// day is midnight UTC of a day in January 2027.
func day(n int) time.Time { return time.Date(2027, time.January, n, 0, 0, 0, 0, time.UTC) }
