package policy

import "errors"

// Why a recipient is refused. The protocol layer maps each to its reply;
// a refusal of one recipient arrives as a *RecipientError wrapping one of
// these.
var (
	// ErrBadAddress: the address does not parse as one we could route.
	ErrBadAddress = errors.New("bad recipient address syntax")
	// ErrNoSuchMailbox: a local address that names nothing.
	ErrNoSuchMailbox = errors.New("no such mailbox")
	// ErrRelayDenied: a remote address from an unauthenticated sender.
	ErrRelayDenied = errors.New("relay access denied")
	// ErrLocalSendersOnly: a group closed to senders from outside.
	ErrLocalSendersOnly = errors.New("this group accepts mail from local senders only")
	// ErrTooManyHops: the message carries so many Received headers that
	// it is taken for a loop.
	ErrTooManyHops = errors.New("too many hops")
)

// RecipientError refuses one recipient: Err is one of the errors above.
type RecipientError struct {
	Address string // normalized; "" when it does not parse
	Err     error
}

// Error names the address, as the SMTP reply does.
func (e *RecipientError) Error() string {
	if e.Address == "" {
		return e.Err.Error()
	}
	return "<" + e.Address + ">: " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *RecipientError) Unwrap() error { return e.Err }

// maxReceived is how many Received headers a message may carry before it
// is taken for a loop (SPEC §4; RFC 5321 §6.3 asks for such a counter).
const maxReceived = 30

// postmasterLocal is the local part every domain must accept (RFC 5321
// §4.5.1); "postmaster" alone, without a domain, is accepted too.
const postmasterLocal = "postmaster"

// IsPostmaster reports whether addr is postmaster@ one of our domains, or
// "postmaster" without a domain.
func (d *Directory) IsPostmaster(addr string) bool {
	addr = normalize(addr)
	if addr == postmasterLocal {
		return true
	}
	base, _ := stripSubaddress(addr)
	local, domain, ok := splitAddress(base)
	return ok && local == postmasterLocal && d.IsLocalDomain(domain)
}

// CheckRecipient decides whether to accept RCPT TO:<rcpt>; nil means yes,
// otherwise a *RecipientError says why not. authenticated is true on
// submission, where any address may be reached. postmaster is accepted
// from anyone, closed group or not (RFC 5321 §4.5.1). SRS bounce
// addresses are the caller's business, before this.
func (d *Directory) CheckRecipient(rcpt string, authenticated bool) error {
	addr := normalize(rcpt)
	if addr == postmasterLocal {
		if _, ok := d.Resolve(addr); ok {
			return nil
		}
		return &RecipientError{Address: addr, Err: ErrNoSuchMailbox}
	}
	if !validAddress(addr) {
		return &RecipientError{Err: ErrBadAddress}
	}
	if !d.IsLocalDomain(domainOf(addr)) {
		if authenticated {
			return nil
		}
		return &RecipientError{Address: addr, Err: ErrRelayDenied}
	}
	t, ok := d.Resolve(addr)
	if !ok {
		return &RecipientError{Address: addr, Err: ErrNoSuchMailbox}
	}
	if t.Kind == KindGroup && !authenticated && !d.groups[t.ID].AllowExternalSenders && !d.IsPostmaster(addr) {
		return &RecipientError{Address: addr, Err: ErrLocalSendersOnly}
	}
	return nil
}
