package mailauth

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"
)

// maxSignatures bounds the DKIM signatures verified per message, so a
// message cannot make the server do unbounded work and lookups.
const maxSignatures = 8

// DKIM is the result of one DKIM signature.
type DKIM struct {
	Result     Result
	Domain     string // d=, lower case
	Identifier string // i=
	Reason     string // why it did not pass, for logs and the header
}

// Report is everything CheckMessage found, with its Verdict.
type Report struct {
	SPF     SPF
	DKIM    []DKIM // one per signature, in header order; nil when not checked
	DMARC   DMARC
	From    []string // the From: domains, lower case
	Verdict Verdict

	authservID string
}

// CheckMessage verifies every DKIM signature of msg (the message as
// received: header and body, CRLF line ends), evaluates DMARC for its
// From: domain with the SPF result from MAIL FROM, applies the own-domain
// rule and decides. The order of the decision:
//
//  1. an own-domain MAIL FROM without SPF pass: Reject (see MailVerdict);
//  2. any DNS failure in SPF, DKIM or DMARC: Defer, never a silent pass;
//  3. a From: in an own domain without proof (SPF pass for a MAIL FROM in
//     that domain, or a valid DKIM signature by it): Reject;
//  4. DMARC fail: the published policy, after pct: p=reject Reject,
//     p=quarantine Junk;
//  5. otherwise Accept.
func (c *Checker) CheckMessage(ctx context.Context, env Envelope, s SPF, msg []byte) *Report {
	rep := &Report{SPF: s, authservID: c.opts.Hostname}
	rep.From = fromDomains(msg)
	if c.opts.DKIM {
		rep.DKIM = c.verifyDKIM(ctx, msg)
	}
	rep.DMARC = c.evaluateDMARC(ctx, rep)
	rep.Verdict = c.decide(env, rep)
	return rep
}

func (c *Checker) decide(env Envelope, rep *Report) Verdict {
	if v := c.MailVerdict(env, rep.SPF); v.Action != Accept {
		return v
	}
	if rep.SPF.Result == TempError || rep.DMARC.Result == TempError ||
		slices.ContainsFunc(rep.DKIM, func(d DKIM) bool { return d.Result == TempError }) {
		return Verdict{Action: Defer, Reason: "cannot check the sender's DNS records now, try again later"}
	}
	for _, d := range rep.From {
		if c.opts.OwnDomain(d) && !c.proven(env, rep, d) {
			return Verdict{Action: Reject, Reason: fmt.Sprintf("From: address in %s is not authorised from this host (no SPF pass for it, no valid DKIM signature by it)", d)}
		}
	}
	if rep.DMARC.Result == Fail {
		switch rep.DMARC.Applied {
		case PolicyReject:
			return Verdict{Action: Reject, Reason: fmt.Sprintf("rejected by the DMARC policy of %s", rep.DMARC.Domain)}
		case PolicyQuarantine:
			return Verdict{Action: Junk, Reason: fmt.Sprintf("quarantined by the DMARC policy of %s", rep.DMARC.Domain)}
		}
	}
	return Verdict{Action: Accept}
}

// proven tells whether the message may claim the own domain d in From:
// SPF passed for a MAIL FROM in d, or a signature by d verified.
func (c *Checker) proven(env Envelope, rep *Report, d string) bool {
	if rep.SPF.Result == Pass && !rep.SPF.Helo && domainOf(env.MailFrom) == d {
		return true
	}
	return slices.ContainsFunc(rep.DKIM, func(k DKIM) bool { return k.Result == Pass && k.Domain == d })
}

// verifyDKIM checks every signature (up to maxSignatures) once; its key
// lookups go through the Checker's resolver under ctx.
func (c *Checker) verifyDKIM(ctx context.Context, msg []byte) []DKIM {
	lookup := func(name string) ([]string, error) { return c.opts.Resolver.LookupTXT(ctx, name) }
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: maxSignatures})
	if err != nil && len(verifs) == 0 {
		return []DKIM{{Result: PermError, Reason: err.Error()}}
	}
	out := make([]DKIM, 0, len(verifs))
	for _, v := range verifs {
		if v == nil {
			continue
		}
		d := DKIM{Result: Pass, Domain: strings.ToLower(v.Domain), Identifier: v.Identifier}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			d.Result, d.Reason = TempError, v.Err.Error()
		case dkim.IsPermFail(v.Err):
			d.Result, d.Reason = PermError, v.Err.Error()
		default:
			d.Result, d.Reason = Fail, v.Err.Error()
		}
		out = append(out, d)
	}
	return out
}

// fromDomains returns the domains of the From: addresses. A From: field
// that does not parse as addresses still yields the domains that follow
// an "@" in it, so a malformed field cannot slip an own domain past the
// own-domain rule. It finds the From: fields with the same walk over the
// header lines as StripResults (a malformed line elsewhere does not hide
// them) and parses only those: parsing the whole header took longer than
// the rest of the checks but DKIM.
func fromDomains(msg []byte) []string {
	var h textproto.Header
	for start := 0; start < len(msg); {
		end := fieldEnd(msg, start)
		if end == start {
			break
		}
		if name, value, ok := bytes.Cut(msg[start:end], []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("From")) {
			h.Add("From", unfold(value))
		}
		start = end
	}
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	var out []string
	add := func(d string) {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	addrs, err := mh.AddressList("From")
	if err == nil {
		for _, a := range addrs {
			add(domainOf(a.Address))
		}
		return out
	}
	for _, v := range h.Values("From") {
		for _, part := range strings.Split(v, "@")[1:] {
			end := strings.IndexAny(part, " \t<>,;:()\"[]\\")
			if end >= 0 {
				part = part[:end]
			}
			add(strings.ToLower(strings.TrimSuffix(part, ".")))
		}
	}
	return out
}

// unfold returns a raw field value as one line: its line breaks removed
// (RFC 5322 section 2.2.3) and the space around it trimmed.
func unfold(value []byte) string {
	v := strings.ReplaceAll(string(value), "\r\n", "")
	return strings.TrimSpace(strings.ReplaceAll(v, "\n", ""))
}
