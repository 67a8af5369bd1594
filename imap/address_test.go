package imap

import (
	"reflect"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
)

func TestParseAddressList(t *testing.T) {
	t.Parallel()
	type A = goimap.Address
	for _, tc := range []struct {
		in   string
		want []A
	}{
		{"group: g1@d1.org, g2@d2.org;", []A{{Mailbox: "group"}, {Mailbox: "g1", Host: "d1.org"}, {Mailbox: "g2", Host: "d2.org"}, {}}},
		{"group:;", []A{{Mailbox: "group"}, {}}},
		{"undisclosed-recipients:;, x@y.org", []A{{Mailbox: "undisclosed-recipients"}, {}, {Mailbox: "x", Host: "y.org"}}},
		{"Team A: Anna <a@x.org>; b@y.org", []A{{Mailbox: "Team A"}, {Name: "Anna", Mailbox: "a", Host: "x.org"}, {}, {Mailbox: "b", Host: "y.org"}}},
		{"<@route:user@domain>", []A{{Mailbox: "user", Host: "domain"}}},
		{"Name <@r1.org,@r2.org:user@domain>", []A{{Name: "Name", Mailbox: "user", Host: "domain"}}},
		{"<user-from (comment)@ (comment) domain.org>", []A{{Mailbox: "user-from", Host: "domain.org"}}},
		{`"Doe, John" <john@x.org>, jane@y.org`, []A{{Name: "Doe, John", Mailbox: "john", Host: "x.org"}, {Mailbox: "jane", Host: "y.org"}}},
		{"John (middle) Doe <jd@x.org>", []A{{Name: "John Doe", Mailbox: "jd", Host: "x.org"}}},
		{"=?utf-8?q?Ren=C3=A9?= <r@x.org>", []A{{Name: "René", Mailbox: "r", Host: "x.org"}}},
		{"=?windows-1252?q?Andr=E9?= <a@x.org>", []A{{Name: "André", Mailbox: "a", Host: "x.org"}}},
		{`"john doe"@x.org`, []A{{Mailbox: `"john doe"`, Host: "x.org"}}},
		{"j.r.doe@x.org", []A{{Mailbox: "j.r.doe", Host: "x.org"}}},
		{"a@[192.0.2.1]", []A{{Mailbox: "a", Host: "[192.0.2.1]"}}},
		{"J. R. Doe <jrd@x.org>", []A{{Name: "J. R. Doe", Mailbox: "jrd", Host: "x.org"}}},
		{"foo, bar@x.org, <broken, @x.org, <c@d.org", []A{{Mailbox: "bar", Host: "x.org"}}},
		{"", nil},
	} {
		if got := parseAddressList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

// FuzzParseAddressList: any header value ends, and groups are balanced.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{"group: g1@d1.org, g2@d2.org;", "<@route:user@domain>", `"a\"b" (c (d)) <e@[f]>`, "a:b:c;;<@", "=?x?q?y?= <a@b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		open := false
		for _, a := range parseAddressList(s) {
			switch {
			case a.Host != "":
				if a.Mailbox == "" {
					t.Fatalf("%q: address without mailbox %+v", s, a)
				}
			case a.Mailbox == "" && a.Name == "":
				if !open {
					t.Fatalf("%q: group end without start", s)
				}
				open = false
			default:
				if open || a.Name != "" {
					t.Fatalf("%q: group start %+v inside a group", s, a)
				}
				open = true
			}
		}
		if open {
			t.Fatalf("%q: group left open", s)
		}
	})
}
