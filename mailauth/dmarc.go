package mailauth

import (
	"context"
	"errors"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// Policy is a DMARC policy: what the domain asks receivers to do with mail
// that fails.
type Policy string

// Policies (RFC 7489 section 6.3, p= and sp=).
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// DMARC is the DMARC result for the From: domain.
type DMARC struct {
	Result Result // Pass, Fail, None (no policy, or no single From: domain), TempError
	Domain string // the From: domain
	// Policy is the domain's published policy (sp= for a subdomain that
	// inherits its organisational domain's record); Applied is what pct
	// left of it for this message (RFC 7489 section 6.6.4).
	Policy, Applied Policy
	Reason          string
}

// evaluateDMARC looks up the policy of the single From: domain and checks
// whether SPF or a DKIM signature passed for an aligned domain.
func (c *Checker) evaluateDMARC(ctx context.Context, rep *Report) DMARC {
	if !c.opts.DMARC {
		return DMARC{Result: NotChecked}
	}
	if len(rep.From) != 1 {
		// RFC 7489 section 6.6.1: without exactly one From: domain
		// there is nothing DMARC can align with.
		return DMARC{Result: None, Reason: "no single From: domain"}
	}
	from := rep.From[0]
	res := DMARC{Domain: from}
	rec, policy, err := c.lookupDMARC(ctx, from)
	switch {
	case dmarc.IsTempFail(err):
		res.Result, res.Reason = TempError, err.Error()
		return res
	case err != nil:
		res.Result, res.Reason = None, err.Error()
		return res
	}
	res.Policy, res.Applied = policy, policy
	if c.alignedPass(rep, from, rec) {
		res.Result = Pass
		return res
	}
	res.Result = Fail
	if rec.Percent != nil && *rec.Percent < 100 && c.opts.Sample(100) >= *rec.Percent {
		res.Applied = weaker(policy)
	}
	return res
}

// lookupDMARC finds the record of domain, or else of its organisational
// domain (RFC 7489 section 6.6.3), and the policy that applies: sp= when
// the record is the organisational domain's and domain is below it.
func (c *Checker) lookupDMARC(ctx context.Context, domain string) (*dmarc.Record, Policy, error) {
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return c.opts.Resolver.LookupTXT(ctx, name) }}
	rec, err := dmarc.LookupWithOptions(domain, opts)
	if err == nil {
		return rec, Policy(rec.Policy), nil
	}
	org := organizational(domain)
	if !errors.Is(err, dmarc.ErrNoPolicy) || org == domain {
		return nil, "", err
	}
	rec, err = dmarc.LookupWithOptions(org, opts)
	if err != nil {
		return nil, "", err
	}
	if rec.SubdomainPolicy != "" {
		return rec, Policy(rec.SubdomainPolicy), nil
	}
	return rec, Policy(rec.Policy), nil
}

// alignedPass: SPF passed for a domain aligned with from, or a DKIM
// signature verified for one.
func (c *Checker) alignedPass(rep *Report, from string, rec *dmarc.Record) bool {
	if rep.SPF.Result == Pass && aligned(rep.SPF.Domain, from, rec.SPFAlignment) {
		return true
	}
	for _, d := range rep.DKIM {
		if d.Result == Pass && aligned(d.Domain, from, rec.DKIMAlignment) {
			return true
		}
	}
	return false
}

// aligned compares an authenticated domain with the From: domain: equal
// in strict mode, the same organisational domain in relaxed mode (the
// default).
func aligned(authenticated, from string, mode dmarc.AlignmentMode) bool {
	authenticated = strings.ToLower(authenticated)
	if authenticated == "" {
		return false
	}
	if authenticated == from {
		return true
	}
	return mode != dmarc.AlignmentStrict && organizational(authenticated) == organizational(from)
}

// organizational is the domain's organisational domain: one label below
// its public suffix.
func organizational(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// weaker is the policy applied to the messages pct leaves out.
func weaker(p Policy) Policy {
	if p == PolicyReject {
		return PolicyQuarantine
	}
	return PolicyNone
}
