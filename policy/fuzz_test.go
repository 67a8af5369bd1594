package policy

import (
	"errors"
	"strings"
	"testing"
)

// The directory's entry points see addresses straight from SMTP and IMAP
// clients: nothing may panic, and the answers must agree with each other.

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"anna@contoso.test", "Support+x@CONTOSO.test", "+@contoso.test", "a+@contoso.test",
		"@", "", "anna+special@contoso.test", "\"a@b\"@contoso.test", "sales+x+y@contoso.test", "\x00@\xff"} {
		f.Add(s)
	}
	d := testDirectory(f)
	f.Fuzz(func(t *testing.T, addr string) {
		got, ok := d.Resolve(addr)
		if !ok {
			return
		}
		if !d.IsLocalDomain(domainOf(addr)) {
			t.Errorf("Resolve(%q) found %+v outside the local domains", addr, got)
		}
		again, ok := d.Resolve(got.Address)
		if !ok || again.ID != got.ID || again.Kind != got.Kind || again.Alias {
			t.Errorf("primary %q of %q resolves to %+v, %t", got.Address, addr, again, ok)
		}
		if mb, err := d.Login(addr); err == nil && mb.ID != got.ID {
			t.Errorf("Login(%q) = %s, Resolve says %s", addr, mb.ID, got.ID)
		}
	})
}

func FuzzCheckRecipient(f *testing.F) {
	for _, s := range []string{"anna@contoso.test", "nobody@contoso.test", "x@fabrikam.example", "sales@contoso.test",
		"", "a b@c", "\r\n@contoso.test", "anna@contoso.test\r\nRCPT TO:<x@y>"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	d := testDirectory(f)
	f.Fuzz(func(t *testing.T, rcpt string, auth bool) {
		err := d.CheckRecipient(rcpt, auth)
		if err == nil {
			p := d.Plan(Inbound{From: "x@fabrikam.example", Recipients: []string{rcpt}, Authenticated: authID(auth)})
			if len(p.Refusals) > 0 {
				t.Errorf("accepted %q but the plan refuses it: %+v", rcpt, p.Refusals)
			}
			return
		}
		var re *RecipientError
		if !errors.As(err, &re) || strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("CheckRecipient(%q) = %v", rcpt, err)
		}
	})
}

func authID(auth bool) string {
	if auth {
		return "bo"
	}
	return ""
}

func FuzzCheckSubmission(f *testing.F) {
	f.Add("anna", "anna@contoso.test", "info@contoso.test", "")
	f.Add("erik", "erik@contoso.test", "info@contoso.test", "erik@contoso.test")
	f.Add("gus", "", "", "x")
	d := testDirectory(f)
	f.Fuzz(func(t *testing.T, user, mailFrom, from, sender string) {
		err := d.CheckSubmission(user, mailFrom, strings.Split(from, ","), sender)
		if err == nil && d.Rights(user, user) == 0 {
			t.Errorf("%q, not a user, may submit", user)
		}
	})
}

func FuzzPlan(f *testing.F) {
	f.Add("x@fabrikam.example", "news@contoso.test,anna+x@contoso.test,ghost@contoso.test", "", "auto-replied", 3)
	f.Add("", "sales@contoso.test", "bo", "", 40)
	d := testDirectory(f)
	f.Fuzz(func(t *testing.T, from, rcpts, auth, autoSubmitted string, hops int) {
		recipients := strings.Split(rcpts, ",")
		p := d.Plan(Inbound{From: from, Recipients: recipients, Authenticated: auth,
			Header: Header{AutoSubmitted: autoSubmitted, ReceivedCount: hops}})
		seen := map[string]bool{}
		for _, ld := range p.Deliveries {
			if seen[ld.MailboxID] {
				t.Errorf("two copies for %s", ld.MailboxID)
			}
			seen[ld.MailboxID] = true
		}
		for _, r := range recipients {
			_, refused := p.Refusals[r]
			if !refused && len(p.Deliveries)+len(p.Remote)+len(p.Forwards) == 0 {
				t.Errorf("recipient %q neither refused nor delivered", r)
			}
		}
	})
}
