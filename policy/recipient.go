package policy

// Refusal is an SMTP refusal of one recipient, for the protocol layer to
// send as it is.
type Refusal struct {
	Code     int
	Enhanced [3]int
	Message  string
}

// maxReceived is how many Received headers a message may carry before it
// is taken for a loop (SPEC §4; RFC 5321 §6.3 asks for such a counter).
const maxReceived = 30

func refuseUnknown(addr string) *Refusal {
	return &Refusal{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "<" + addr + ">: no such mailbox"}
}

func refuseRelay() *Refusal {
	return &Refusal{Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "relay access denied"}
}

func refuseGroup(addr string) *Refusal {
	return &Refusal{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "<" + addr + ">: this group accepts mail from local senders only"}
}

// refuseSyntax does not echo the address: it may hold anything.
func refuseSyntax() *Refusal {
	return &Refusal{Code: 553, Enhanced: [3]int{5, 1, 3}, Message: "bad recipient address syntax"}
}

func refuseHops() *Refusal {
	return &Refusal{Code: 554, Enhanced: [3]int{5, 4, 6}, Message: "too many hops"}
}

// CheckRecipient decides whether to accept RCPT TO:<rcpt>; nil means yes.
// authenticated is true on submission, where any address may be reached.
// SRS bounce addresses are the caller's business, before this.
func (d *Directory) CheckRecipient(rcpt string, authenticated bool) *Refusal {
	addr := normalize(rcpt)
	if !validAddress(addr) {
		return refuseSyntax()
	}
	if !d.IsLocalDomain(domainOf(addr)) {
		if authenticated {
			return nil
		}
		return refuseRelay()
	}
	t, ok := d.Resolve(addr)
	if !ok {
		return refuseUnknown(addr)
	}
	if t.Kind == KindGroup && !authenticated && !d.groups[t.ID].AllowExternalSenders {
		return refuseGroup(addr)
	}
	return nil
}
