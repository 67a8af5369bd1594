package mailauth

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"blitiri.com.ar/go/spf"
)

// SPF is the SPF result of a transaction.
type SPF struct {
	Result Result
	// Helo is true when the HELO name was checked (null sender), false
	// when the MAIL FROM domain was.
	Helo bool
	// Domain is the domain checked, lower case.
	Domain string
	// Reason explains an error result, for logs.
	Reason string
}

// CheckSPF evaluates SPF for the MAIL FROM domain, or for the HELO name
// when the sender is null (RFC 7208 section 2.3). With SPF switched off it
// returns Result NotChecked.
func (c *Checker) CheckSPF(ctx context.Context, env Envelope) SPF {
	if !c.opts.SPF {
		return SPF{Result: NotChecked}
	}
	sender, helo := env.MailFrom, strings.ToLower(strings.TrimSuffix(env.Helo, "."))
	res := SPF{Domain: domainOf(sender)}
	if sender == "" {
		// RFC 7208 section 2.4: the null sender is checked as
		// postmaster@ the HELO name.
		res.Helo, res.Domain = true, helo
		sender = "postmaster@" + helo
	}
	if res.Domain == "" || strings.HasPrefix(res.Domain, "[") || isIP(res.Domain) {
		// An address literal or no name at all has no SPF record.
		res.Result, res.Reason = None, "no domain to check"
		return res
	}
	r, err := spf.CheckHostWithSender(env.IP.Unmap().AsSlice(), helo, sender,
		spf.WithContext(ctx), spf.WithResolver(c.opts.Resolver))
	res.Result = Result(r)
	if err != nil && res.Result != Pass && res.Result != Fail && res.Result != SoftFail && res.Result != Neutral {
		res.Reason = err.Error()
	}
	return res
}

// MailVerdict applies the own-domain rule at MAIL FROM (SPEC §11): a
// sender in one of the server's domains must pass SPF, so nobody outside
// can send as anna@ in the envelope. A DNS failure defers rather than
// refuses. Other senders are accepted here and judged after DATA.
//
// With SPF switched off an own-domain sender cannot be proven and is
// refused: switching a check off does not open the server's domains to
// spoofing (the organisation's own servers belong in trusted_networks).
func (c *Checker) MailVerdict(env Envelope, s SPF) Verdict {
	d := domainOf(env.MailFrom)
	if env.MailFrom == "" || !c.opts.OwnDomain(d) {
		return Verdict{Action: Accept}
	}
	switch s.Result {
	case Pass:
		return Verdict{Action: Accept}
	case TempError:
		return Verdict{Action: Defer, Reason: fmt.Sprintf("cannot check SPF of %s now, try again later", d)}
	}
	return Verdict{Action: Reject, Reason: fmt.Sprintf("sender address in %s is not authorised from this host (SPF %s)", d, resultText(s.Result))}
}

func resultText(r Result) string {
	if r == NotChecked {
		return "not checked"
	}
	return string(r)
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
