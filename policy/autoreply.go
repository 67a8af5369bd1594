package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// defaultReplyPrefix starts the subject of a reply without its own.
const defaultReplyPrefix = "Automatic reply"

// autoReplies returns the automatic replies due for the planned message,
// at most one per mailbox, in the order the mailboxes were reached.
func (p *planner) autoReplies() []AutoReplyPlan {
	if !wantsAutoReply(p.in) {
		return nil
	}
	answering := p.answering()
	var out []AutoReplyPlan
	for _, id := range p.order {
		if !answering[id] {
			continue
		}
		if r, ok := p.d.autoReply(p.d.mailboxes[id], p.in); ok {
			out = append(out, r)
		}
	}
	return out
}

// wantsAutoReply applies RFC 3834's exclusions that depend on the message
// alone: nothing goes to the null sender, to MAILER-DAEMON, or in answer
// to automatic or list mail.
func wantsAutoReply(in Inbound) bool {
	sender := normalize(in.From)
	if sender == "" || !validAddress(sender) || localOf(sender) == "mailer-daemon" {
		return false
	}
	h := in.Header
	if as := strings.TrimSpace(h.AutoSubmitted); as != "" {
		// auto-submitted = "no" / "auto-generated" / ..., with optional
		// parameters after a semicolon.
		token, _, _ := strings.Cut(as, ";")
		if !strings.EqualFold(strings.TrimSpace(token), "no") {
			return false
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.Precedence)) {
	case "bulk", "list", "junk":
		return false
	}
	return strings.TrimSpace(h.ListID) == ""
}

// autoReply returns the reply mb sends to in, if it sends one: the rule is
// on and in force, the sender is not the mailbox itself, and the text for
// this sender's audience is not empty.
func (d *Directory) autoReply(mb *Mailbox, in Inbound) (AutoReplyPlan, bool) {
	ar := mb.AutoReply
	if ar == nil || !ar.Enabled || !inWindow(ar, in.Now) {
		return AutoReplyPlan{}, false
	}
	sender := normalize(in.From)
	if d.isOwnAddress(mb.ID, sender) {
		return AutoReplyPlan{}, false
	}
	body, ifContact := replyText(mb, in.Authenticated != "", sender)
	if body == "" {
		return AutoReplyPlan{}, false
	}
	return AutoReplyPlan{
		IfContact:  ifContact,
		MailboxID:  mb.ID,
		From:       mb.Address,
		To:         strings.TrimSpace(in.From),
		Subject:    replySubject(ar.Subject, in.Header.Subject),
		Body:       body,
		InReplyTo:  strings.TrimSpace(in.Header.MessageID),
		References: replyReferences(in.Header),
		TextKey:    textKey(ar.Subject, body),
	}, true
}

// inWindow reports whether now is in [Start, End); a zero bound is open.
func inWindow(ar *AutoReply, now time.Time) bool {
	if !ar.Start.IsZero() && now.Before(ar.Start) {
		return false
	}
	return ar.End.IsZero() || now.Before(ar.End)
}

// replyText picks the text for the sender: internal senders are those who
// submitted the message here, authenticated; everyone else is external
// and answered according to the audience. For the "contacts" audience, a
// sender not among the file's contacts may still be in the mailbox's
// address book, which policy cannot read: ifContact leaves that to the
// caller.
func replyText(mb *Mailbox, internal bool, sender string) (text string, ifContact bool) {
	ar := mb.AutoReply
	if internal {
		return ar.Internal, false
	}
	switch ar.ExternalAudience {
	case AudienceAll:
		return ar.External, false
	case AudienceContacts:
		base, _ := stripSubaddress(sender)
		inFile := slices.Contains(mb.Contacts, sender) || slices.Contains(mb.Contacts, base)
		return ar.External, !inFile
	}
	return "", false
}

func replySubject(configured, original string) string {
	if configured != "" {
		return oneLine(configured)
	}
	original = oneLine(original)
	if original == "" {
		return defaultReplyPrefix
	}
	return defaultReplyPrefix + ": " + original
}

// replyReferences is the original's References followed by its
// Message-ID (RFC 5322 §3.6.4), unfolded.
func replyReferences(h Header) string {
	refs := strings.Fields(h.References)
	if id := strings.TrimSpace(h.MessageID); id != "" {
		refs = append(refs, id)
	}
	return strings.Join(refs, " ")
}

// oneLine unfolds a header value so it cannot break the reply's header.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// textKey identifies a reply text. It hashes the configured subject, not
// the one made from the original's, so the key stays the same across
// messages until the administrator changes the text.
func textKey(subject, body string) string {
	sum := sha256.Sum256([]byte(subject + "\x00" + body))
	return hex.EncodeToString(sum[:16])
}
