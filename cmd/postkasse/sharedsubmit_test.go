package main

import (
	"net/smtp"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

// loginAuth is the LOGIN mechanism for net/smtp, which has only PLAIN
// and CRAM-MD5; phones use either.
type loginAuth struct{ user, pass string }

func (a loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return "LOGIN", nil, nil }

func (a loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	if strings.HasPrefix(strings.ToLower(string(challenge)), "user") {
		return []byte(a.user), nil
	}
	return []byte(a.pass), nil
}

// A phone with info@ set up as its own account (SPEC §5) sends as info@.
func TestSubmissionAsSharedAccount(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sharedConfig)
	msg := "From: info@contoso.test\nTo: carl@contoso.test\nSubject: from the team\n\nhello\n"
	// net/smtp: LOGIN with target*member. Its PLAIN refuses a server
	// without TLS off localhost names, so LOGIN it is.
	if err := smtp.SendMail(ts.sub, loginAuth{"info@contoso.test*anna@contoso.test", "anna-secret"}, "info@contoso.test", []string{"carl@contoso.test"}, []byte(msg)); err != nil {
		t.Fatalf("net/smtp as info*anna: %v", err)
	}
	// go-smtp: member\target with PLAIN, and PLAIN with authzid.
	if err := sendMail(ts.sub, sasl.NewPlainClient("", `anna@contoso.test\info@contoso.test`, "anna-secret"), "info@contoso.test", []string{"carl@contoso.test"}, msg); err != nil {
		t.Fatalf("anna\\info: %v", err)
	}
	if err := sendMail(ts.sub, sasl.NewPlainClient("info@contoso.test", "anna@contoso.test", "anna-secret"), "info@contoso.test", []string{"carl@contoso.test"}, msg); err != nil {
		t.Fatalf("PLAIN authzid info: %v", err)
	}
	if n := ts.count("carl@contoso.test", "carl-secret", "INBOX"); n != 3 {
		t.Fatalf("carl has %d messages, want 3", n)
	}
	for _, tc := range []struct{ authzid, user, pass string }{
		{"", "info@contoso.test*dora@contoso.test", "carl-secret"}, // not a member
		{"info@contoso.test", "dora@contoso.test", "carl-secret"},
		{"", "info@contoso.test*anna@contoso.test", "wrong"},
		{"", "carl@contoso.test*anna@contoso.test", "anna-secret"}, // not a shared mailbox
	} {
		err := sendMail(ts.sub, sasl.NewPlainClient(tc.authzid, tc.user, tc.pass), "info@contoso.test", []string{"carl@contoso.test"}, msg)
		if code := smtpCode(err); code != "535 5.7.8" {
			t.Errorf("%s (authzid %q): %s, want 535 5.7.8", tc.user, tc.authzid, code)
		}
	}
}
