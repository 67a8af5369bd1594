package mailauth_test

import (
	"context"
	"net/netip"

	"postkasse.dev/postkasse/mailauth"
	"postkasse.dev/postkasse/resolver"
)

// smtpError stands for the transaction's reply type (a *gosmtp.SMTPError).
type smtpError struct {
	code     int
	enhanced [3]int
	text     string
}

func (e *smtpError) Error() string { return e.text }

func refusal(v mailauth.Verdict) error {
	code, enhanced, text := v.Reply()
	if code == 0 {
		return nil
	}
	return &smtpError{code, enhanced, text}
}

// Example shows where an inbound transaction on the MX port calls the
// checks: SPF and the own-domain rule at MAIL FROM, the rest after DATA;
// the message is stored (or refused) as the verdict says, with the
// Authentication-Results header on top.
func Example() {
	dns, _ := resolver.New(resolver.Options{Server: "127.0.0.1:53"})
	ownDomains := map[string]bool{"contoso.test": true}
	checker, _ := mailauth.New(mailauth.Options{
		Hostname: "mail.contoso.test", Resolver: dns,
		OwnDomain: func(d string) bool { return ownDomains[d] },
		SPF:       true, DKIM: true, DMARC: true,
	})
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ctx := context.Background()

	// MAIL FROM (skipped for trusted networks and authenticated sessions):
	env := mailauth.Envelope{IP: netip.MustParseAddr("192.0.2.10"), Helo: "mx.fabrikam.example", MailFrom: "bob@fabrikam.example"}
	isTrusted := false
	for _, p := range trusted {
		isTrusted = isTrusted || p.Contains(env.IP)
	}
	var spf mailauth.SPF
	if !isTrusted {
		spf = checker.CheckSPF(ctx, env)
		if err := refusal(checker.MailVerdict(env, spf)); err != nil {
			return // reply err to MAIL FROM
		}
	}

	// After DATA, once per message (not per recipient):
	msg := []byte("From: bob@fabrikam.example\r\nSubject: hi\r\n\r\nhello\r\n")
	if !isTrusted {
		report := checker.CheckMessage(ctx, env, spf, msg)
		if err := refusal(report.Verdict); err != nil {
			return // reply err (550 5.7.1 or 451 4.7.0): nothing stored
		}
		msg = report.Stamp(msg) // our Authentication-Results on top, forged ones gone
		if report.Verdict.Action == mailauth.Junk {
			_ = msg // file every local copy into the recipient's Junk folder instead of INBOX
		}
	} else {
		msg = mailauth.StripResults(msg, "mail.contoso.test")
	}
}
