package policy

// SendAsError refuses a submission: the user may not send as Address.
// Address is "" when the message has no From: address or the envelope
// sender is null.
type SendAsError struct {
	Address string
}

// Error names the address, as the SMTP reply does.
func (e *SendAsError) Error() string {
	return "not allowed to send as <" + e.Address + ">"
}

// CheckSubmission applies SPEC §5 to a message user userID submits.
// mailFrom is the envelope sender, from the From: addresses and sender the
// Sender: address ("" when absent). It allows:
//
//   - send-as: MAIL FROM and every From: address are addresses the user
//     may send as (SendAs), subaddresses included;
//   - send-on-behalf: a From: address belongs to a shared mailbox where the
//     user holds RightSendOnBehalf, Sender: is one of the user's own
//     addresses, and MAIL FROM is the user's or that mailbox's.
//
// A Sender: that is present must always be an address the user may send
// as, or a forged Sender: would pass under an allowed From:.
// Anything else is a *SendAsError naming the first offending address,
// envelope first.
func (d *Directory) CheckSubmission(userID, mailFrom string, from []string, sender string) error {
	allowed := d.sendAs[userID]
	if allowed == nil {
		return &SendAsError{Address: normalize(mailFrom)}
	}
	mailFrom, sender = normalize(mailFrom), normalize(sender)
	if mailFrom == "" || len(from) == 0 {
		return &SendAsError{}
	}
	var behalf []*Mailbox // shared mailboxes in From: used on behalf
	badFrom, badFound := "", false
	for _, f := range from {
		f = normalize(f)
		if allowed.hasOrParent(f) {
			continue
		}
		if mb := d.onBehalfOf(userID, f); mb != nil {
			behalf = append(behalf, mb)
			continue
		}
		if !badFound {
			badFrom, badFound = f, true
		}
	}
	if !allowed.hasOrParent(mailFrom) && !d.ownedByAny(behalf, mailFrom) {
		return &SendAsError{Address: mailFrom}
	}
	if badFound {
		return &SendAsError{Address: badFrom}
	}
	if sender != "" && !allowed.hasOrParent(sender) {
		return &SendAsError{Address: sender}
	}
	if len(behalf) > 0 && !d.isOwnAddress(userID, sender) {
		return &SendAsError{Address: behalf[0].Address}
	}
	return nil
}

// CheckEnvelopeSender is the part of CheckSubmission that MAIL FROM alone
// decides: the envelope sender must be an address the user may send as, or
// one of a shared mailbox the user may send on behalf of. Submission asks it
// at MAIL FROM so a refused sender does not upload its message first.
func (d *Directory) CheckEnvelopeSender(userID, mailFrom string) error {
	mailFrom = normalize(mailFrom)
	allowed := d.sendAs[userID]
	if mailFrom == "" || allowed == nil {
		return &SendAsError{Address: mailFrom}
	}
	if allowed.hasOrParent(mailFrom) || d.onBehalfOf(userID, mailFrom) != nil {
		return nil
	}
	return &SendAsError{Address: mailFrom}
}

// onBehalfOf returns the shared mailbox addr belongs to, if the user may
// send on its behalf.
func (d *Directory) onBehalfOf(userID, addr string) *Mailbox {
	t, ok := d.Resolve(addr)
	if !ok || t.Kind != KindShared || !d.Rights(userID, t.ID).Has(RightSendOnBehalf) {
		return nil
	}
	return d.mailboxes[t.ID]
}

func (d *Directory) ownedByAny(mailboxes []*Mailbox, addr string) bool {
	for _, mb := range mailboxes {
		if d.isOwnAddress(mb.ID, addr) {
			return true
		}
	}
	return false
}

// SendAsShared returns the shared mailbox a submitted message is sent as or
// on behalf of: the first From: address that belongs to a shared mailbox
// where the user may send as or on behalf. Its Sent folder gets a copy.
func (d *Directory) SendAsShared(userID string, from []string) (*Mailbox, bool) {
	for _, f := range from {
		t, ok := d.Resolve(f)
		if !ok || t.Kind != KindShared {
			continue
		}
		if d.Rights(userID, t.ID)&(RightSendAs|RightSendOnBehalf) != 0 {
			return d.mailboxes[t.ID], true
		}
	}
	return nil, false
}
