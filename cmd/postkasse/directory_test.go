package main

import (
	"os"
	"reflect"
	"testing"
	"time"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/policy"
)

// exampleHashes are the password hashes of config.example.toml.
var exampleHashes = map[string]string{
	"anna": "$2a$10$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe",
	"bo":   "$2a$10$n94uH48MJHJ4ZF7QrKTltOzy7X.VxSIEku3eTgiOuc2zbzRDjzyEW",
	"carl": "$2a$10$u36dagNsIVSwH7TQCpYnJubW5Q8WdUq33i4qbAAV4FAlF1O.boTN2",
}

func TestDirectoryOptionsFromExample(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	const gb = 1000 * 1000 * 1000
	want := policy.DirectoryOptions{
		Domains:    []string{"contoso.test", "fourthcoffee.test"},
		Postmaster: "anna@contoso.test",
		Mailboxes: []policy.Mailbox{
			{ID: "anna", Kind: policy.KindUser, Address: "anna@contoso.test", Name: "Anna Andersen",
				Aliases: []string{"support@contoso.test"}, PasswordHash: exampleHashes["anna"], IMAP: true, SMTP: true, DAV: true,
				Quota: 10 * gb, Contacts: []string{"boss@partner.example"}},
			{ID: "bo", Kind: policy.KindUser, Address: "bo@contoso.test", Name: "Bo Berg",
				PasswordHash: exampleHashes["bo"], IMAP: true, SMTP: true, DAV: true, Quota: 50 * gb,
				AutoReply: &policy.AutoReply{
					Enabled: false, Subject: "Out of office", ExternalAudience: policy.AudienceContacts,
					Start:    time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC),
					End:      time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC),
					Internal: "I am away until 2 January. Anna covers for me.",
					External: "Thank you for your mail. I am away until 2 January.",
				}},
			{ID: "carl", Kind: policy.KindUser, Address: "carl@contoso.test", Name: "Carl Carlsson",
				PasswordHash: exampleHashes["carl"], IMAP: true, SMTP: true, DAV: true, Quota: 50 * gb},
			{ID: "info", Kind: policy.KindShared, Address: "info@contoso.test", Name: "Contoso Info",
				Aliases: []string{"kontakt@contoso.test"}, Quota: 50 * gb,
				Members:  []string{"anna@contoso.test", "bo@contoso.test"},
				Grants:   map[string]policy.Rights{"carl@contoso.test": policy.RightRead},
				SentCopy: true},
		},
		Groups: []policy.Group{{ID: "sales", Address: "sales@contoso.test", Name: "Sales",
			Members: []string{"bo@contoso.test", "info@contoso.test", "partner@fabrikam.example"}}},
	}
	got := directoryOptions(cfg)
	// Times compare by instant, not by location.
	if ar := got.Mailboxes[1].AutoReply; ar != nil {
		ar.Start, ar.End = ar.Start.UTC(), ar.End.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("directoryOptions:\n got %+v\nwant %+v", got, want)
	}

	dir, err := policy.NewDirectory(got)
	if err != nil {
		t.Fatalf("the example's directory is refused: %v", err)
	}
	for _, tc := range []struct {
		user string
		want policy.Rights
	}{
		{"anna", policy.RightFull | policy.RightSendAs},
		{"carl", policy.RightRead},
	} {
		if r := dir.Rights(tc.user, "info"); r != tc.want {
			t.Errorf("%s's rights on info = %b, want %b", tc.user, r, tc.want)
		}
	}
	if target, ok := dir.Resolve("kontakt@contoso.test"); !ok || target.ID != "info" {
		t.Errorf("kontakt@ resolves to %+v, %v", target, ok)
	}
}

func TestDirectoryOptionsConversions(t *testing.T) {
	t.Parallel()
	src := `hostname = "mail.contoso.test"
domains = ["contoso.test"]
[user.anna]
address = "Anna@Contoso.test"
password = "$2a$10$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe"
apps = ["smtp"]
quota = "512KiB"
[user.anna.forward]
to = ["Anna@Home.example"]
keep_copy = true
[user.anna.auto_reply]
external = "away"
[shared.info]
address = "info@contoso.test"
seen = "per-user"
sent_copy = false
[shared.info.grants]
"ANNA@contoso.test" = ["send_on_behalf", "read", "send_as"]
`
	cfg, err := config.Parse("c.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	opts := directoryOptions(cfg)
	anna, info := opts.Mailboxes[0], opts.Mailboxes[1]
	if anna.Address != "anna@contoso.test" || anna.IMAP || !anna.SMTP || anna.Quota != 512<<10 {
		t.Errorf("anna %+v", anna)
	}
	if anna.Forward == nil || !anna.Forward.KeepCopy || anna.Forward.To[0] != "anna@home.example" {
		t.Errorf("anna's forward %+v", anna.Forward)
	}
	if anna.AutoReply == nil || anna.AutoReply.ExternalAudience != policy.AudienceAll {
		t.Errorf("anna's auto_reply %+v: an external text without an audience goes to all", anna.AutoReply)
	}
	if !info.SeenPerUser || info.SentCopy || info.IMAP || info.SMTP {
		t.Errorf("info %+v", info)
	}
	if r := info.Grants["anna@contoso.test"]; r != policy.RightRead|policy.RightSendAs|policy.RightSendOnBehalf {
		t.Errorf("anna's grant on info = %b", r)
	}
}

func TestRightsAndAudienceNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		names []string
		want  policy.Rights
	}{
		{nil, 0},
		{[]string{"read"}, policy.RightRead},
		{[]string{"full"}, policy.RightFull},
		{[]string{"full", "send_as"}, policy.RightFull | policy.RightSendAs},
		{[]string{"send_on_behalf", "send_on_behalf"}, policy.RightSendOnBehalf},
	} {
		if got := parseRights(tc.names); got != tc.want {
			t.Errorf("parseRights(%v) = %b, want %b", tc.names, got, tc.want)
		}
	}
	for name, want := range map[string]policy.Audience{"none": policy.AudienceNone, "contacts": policy.AudienceContacts, "all": policy.AudienceAll} {
		if got := audience(name); got != want {
			t.Errorf("audience(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzDirectoryOptions: whatever the config package accepts, the policy
// package must accept too, or a file that `postkasse check` passes would
// fail to serve with messages that name no line.
func FuzzDirectoryOptions(f *testing.F) {
	if example, err := os.ReadFile("../../config.example.toml"); err == nil {
		f.Add(example)
	}
	f.Add([]byte(`hostname = "h.contoso.test"
domains = ["contoso.test", "b.test"]
[user.a]
address = "a@contoso.test"
aliases = ["x@b.test"]
password = "` + exampleHashes["anna"] + `"
[user.a.forward]
to = ["g@contoso.test"]
[shared.s]
address = "s@contoso.test"
members = ["g@contoso.test"]
[shared.s.grants]
"A@contoso.test" = ["read"]
[group.g]
address = "g@contoso.test"
members = ["a@contoso.test", "s@contoso.test", "h@contoso.test", "out@example.org"]
[group.h]
address = "h@contoso.test"
members = ["a@contoso.test"]
`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.toml", data)
		if err != nil {
			return
		}
		if _, err := policy.NewDirectory(directoryOptions(cfg)); err != nil {
			t.Fatalf("config accepted what policy refuses: %v", err)
		}
	})
}
