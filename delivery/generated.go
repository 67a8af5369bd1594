package delivery

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

// Submit delivers a message the server generated (a bounce, an automatic
// reply): local recipients get it through the usual routing, remote ones
// through the outbound queue. It implements the queue's Submitter.
func (a *Agent) Submit(ctx context.Context, from string, to []string, msg []byte, kind string) error {
	dir := a.opts.Directory()
	var local, remote []string
	for _, rcpt := range to {
		// A bounce of forwarded mail is addressed to the SRS envelope
		// sender the forward went out with: it goes to the original one.
		if orig, ok := a.reverseSRS(rcpt); ok {
			rcpt = orig
		}
		if _, ok := dir.Resolve(rcpt); ok {
			local = append(local, rcpt)
		} else if !dir.IsLocalDomain(domainOf(rcpt)) {
			remote = append(remote, rcpt)
		} else {
			a.log.Warn("generated mail to unknown local address dropped", "to", rcpt, "kind", kind)
		}
	}
	if len(local) > 0 {
		m := &Message{From: from, Recipients: local, Body: msg, Kind: kind, Helo: a.opts.Hostname}
		rep, err := a.deliver(ctx, dir, m, parseHeader(msg))
		if err != nil {
			return err
		}
		a.log.Info("generated", "id", m.ID, "kind", kind, "from", from, "rcpts", len(local), "stored", rep.stored, "queued", len(rep.queued))
	}
	if len(remote) > 0 {
		_, err := a.opts.Store.Enqueue(ctx, store.NewQueuedMessage{From: from, Recipients: remote, Body: msg, Kind: kind})
		if err != nil {
			return fmt.Errorf("queue %s: %w", kind, err)
		}
		if a.opts.Queue != nil {
			a.opts.Queue.Kick()
		}
	}
	return nil
}

// sendAutoReply sends one automatic reply unless this sender already had
// one with this text within the window (remembered in the store, so also
// across restarts). RFC 3834: from the mailbox, to the sender, MAIL FROM
// the null sender, Auto-Submitted: auto-replied. A reply that the policy
// leaves to the address book goes only to a sender the book lists.
func (a *Agent) sendAutoReply(ctx context.Context, dir *policy.Directory, reply policy.AutoReplyPlan, now time.Time) error {
	if reply.IfContact {
		if a.opts.Contacts == nil {
			return nil
		}
		known, err := a.opts.Contacts.IsContact(ctx, reply.MailboxID, reply.To)
		if err != nil || !known {
			return err
		}
	}
	due, err := a.opts.Store.NoteAutoReply(ctx, reply.MailboxID, reply.To, reply.TextKey, now, autoReplyWindow)
	if err != nil || !due {
		return err
	}
	var h mail.Header
	name := ""
	if mb, ok := dir.Mailbox(reply.MailboxID); ok {
		name = mb.Name
	}
	h.SetAddressList("From", []*mail.Address{{Name: name, Address: reply.From}})
	h.SetAddressList("To", []*mail.Address{{Address: reply.To}})
	h.SetSubject(reply.Subject)
	h.Set("Auto-Submitted", "auto-replied")
	if reply.InReplyTo != "" {
		h.Set("In-Reply-To", reply.InReplyTo)
	}
	if reply.References != "" {
		h.Set("References", reply.References)
	}
	msg, err := a.compose(h, reply.Body, now)
	if err != nil {
		return err
	}
	a.log.Info("automatic reply", "mailbox", reply.MailboxID, "to", reply.To)
	return a.Submit(ctx, "", []string{reply.To}, msg, "auto-reply")
}

// sendQuotaWarning files the one warning a mailbox gets when it passes 90%
// of its quota.
func (a *Agent) sendQuotaWarning(ctx context.Context, dir *policy.Directory, mailboxID string, now time.Time) {
	mb, ok := dir.Mailbox(mailboxID)
	if !ok {
		return
	}
	usage, err := a.opts.Store.Usage(ctx, mailboxID)
	if err != nil {
		a.log.Warn("quota warning: usage", "mailbox", mailboxID, "err", err)
		return
	}
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Name: "Mail System", Address: "postmaster@" + a.opts.Hostname}})
	h.SetAddressList("To", []*mail.Address{{Name: mb.Name, Address: mb.Address}})
	h.SetSubject("Your mailbox is almost full")
	h.Set("Auto-Submitted", "auto-generated")
	text := fmt.Sprintf("The mailbox %s uses %s of its quota of %s (%d%%).\n\n"+
		"When it is full, new mail to it is refused. Delete or archive old mail,\n"+
		"or ask your administrator for a larger quota.\n",
		mb.Address, formatBytes(usage), formatBytes(mb.Quota), usage*100/max(mb.Quota, 1))
	msg, err := a.compose(h, text, now)
	if err != nil {
		a.log.Warn("quota warning: compose", "err", err)
		return
	}
	_, err = a.opts.Store.Deliver(ctx, &store.Delivery{Body: msg, Date: now, Targets: []store.Target{{
		Account: mailboxID, Folder: "INBOX", Prefix: deliveredTo(mb.Address),
	}}})
	if err != nil {
		a.log.Warn("quota warning: deliver", "mailbox", mailboxID, "err", err)
		return
	}
	a.log.Info("quota warning sent", "mailbox", mailboxID, "usage", usage, "quota", mb.Quota)
}

// compose writes a plain-text UTF-8 message with CRLF line endings.
func (a *Agent) compose(h mail.Header, text string, now time.Time) ([]byte, error) {
	h.SetDate(now)
	if err := h.GenerateMessageIDWithHostname(a.opts.Hostname); err != nil {
		return nil, fmt.Errorf("message id: %w", err)
	}
	h.Set("MIME-Version", "1.0")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(text, "\r\n", "\n"))); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	return buf.Bytes(), nil
}

func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}
