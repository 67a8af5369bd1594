// Package mailauth decides whether mail from another server is who it says
// it is (SPEC §11): SPF (RFC 7208) of the envelope sender, DKIM (RFC 6376)
// signatures, DMARC (RFC 7489) of the From: domain, and the server's own
// rule that nobody outside may claim one of its domains without proof. It
// turns the results into a Verdict (accept, accept into Junk, reject,
// try later) and an Authentication-Results header (RFC 8601).
//
// It is called by the inbound SMTP transaction: CheckSPF and MailVerdict
// at MAIL FROM, CheckMessage after DATA. It does its DNS through the
// Resolver it is given and knows nothing of SMTP sessions, the store or the
// configuration file; it must not import them.
package mailauth

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
)

// Resolver answers the checks' DNS questions; *resolver.Resolver
// implements it. Errors must be bare *net.DNSError values whose
// IsNotFound and Temporary() tell "none" from "no answer".
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Options configure a Checker.
type Options struct {
	// Hostname is the authserv-id of the Authentication-Results header.
	Hostname string
	// Resolver does every lookup. Required.
	Resolver Resolver
	// OwnDomain reports whether a (lower-case) domain is one of the
	// server's own. Required; it is asked on every check, so it may
	// follow configuration reloads.
	OwnDomain func(domain string) bool
	// SPF, DKIM and DMARC switch each check on.
	SPF, DKIM, DMARC bool
	// Sample draws a number in [0, n) for DMARC's pct; nil = math/rand/v2.
	Sample func(n int) int
}

// Checker runs the checks. It is safe for concurrent use.
type Checker struct {
	opts Options
}

// New returns a Checker.
func New(opts Options) (*Checker, error) {
	switch {
	case opts.Hostname == "":
		return nil, errors.New("mailauth: no hostname")
	case opts.Resolver == nil:
		return nil, errors.New("mailauth: no resolver")
	case opts.OwnDomain == nil:
		return nil, errors.New("mailauth: no own-domain test")
	}
	if opts.Sample == nil {
		opts.Sample = rand.IntN
	}
	return &Checker{opts: opts}, nil
}

// Envelope is what the transaction knows at MAIL FROM.
type Envelope struct {
	IP       netip.Addr // the client's address
	Helo     string     // the EHLO/HELO name
	MailFrom string     // the envelope sender; "" is the null sender
}

// Result is the outcome of one check, named as in RFC 8601.
type Result string

// Results. NotChecked is a check switched off: it is left out of the
// Authentication-Results header.
const (
	NotChecked Result = ""
	Pass       Result = "pass"
	Fail       Result = "fail"
	SoftFail   Result = "softfail"
	Neutral    Result = "neutral"
	None       Result = "none"
	TempError  Result = "temperror"
	PermError  Result = "permerror"
)

// Action is what the transaction does with the message.
type Action int

// Actions, from mild to severe; Defer ranks above Reject only in that a
// DNS failure must never turn into a refusal (see CheckMessage).
const (
	Accept Action = iota // deliver as usual
	Junk                 // deliver into each recipient's Junk folder (DMARC quarantine)
	Reject               // refuse: 550 5.7.1, nothing stored
	Defer                // refuse for now: 451 4.7.0, nothing stored; the sender retries
)

// String names the action for logs.
func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Junk:
		return "junk"
	case Reject:
		return "reject"
	case Defer:
		return "defer"
	}
	return "unknown"
}

// Verdict is an Action and why, for the log and the reply text.
type Verdict struct {
	Action Action
	Reason string
}

// Reply is the SMTP reply for a Reject or Defer verdict (code, enhanced
// status code, text); for Accept and Junk it returns code 0.
func (v Verdict) Reply() (code int, enhanced [3]int, text string) {
	switch v.Action {
	case Reject:
		return 550, [3]int{5, 7, 1}, v.Reason
	case Defer:
		return 451, [3]int{4, 7, 0}, v.Reason
	}
	return 0, [3]int{}, ""
}

// domainOf returns the lower-case domain of an address, "" without one.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
	}
	return ""
}
