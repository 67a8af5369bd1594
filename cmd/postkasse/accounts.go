package main

import (
	"strings"
	"sync/atomic"

	"postkasse.dev/postkasse/imap"
	"postkasse.dev/postkasse/password"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/smtp"
)

// accounts answers the protocol packages' questions about users and
// rights from the directory in force (swapped whole on reload).
type accounts struct {
	dir      *atomic.Pointer[policy.Directory]
	verifier *password.Verifier
	store    storeBackend
}

func (a *accounts) directory() *policy.Directory { return a.dir.Load() }

// login checks a user's password; it is the one place credentials are
// verified, for IMAP and submission alike.
func (a *accounts) login(username, pass string) (*policy.Mailbox, error) {
	mb, err := a.directory().Login(username)
	if err != nil {
		a.verifier.VerifyUnknown(pass)
		return nil, err
	}
	if !a.verifier.Verify(mb.PasswordHash, pass) {
		return nil, policy.ErrUnknownUser
	}
	return mb, nil
}

// Authenticate implements smtp.Authenticator. Besides a user's own
// address it accepts the logins that open a shared mailbox as an account
// (SPEC §5, as IMAP does): the member's password, and the member must be
// able to open the mailbox.
func (a *accounts) Authenticate(username, pass string) (string, error) {
	login, target := username, ""
	if t, member, ok := splitSharedLogin(username); ok {
		if _, err := a.directory().Login(username); err != nil {
			login, target = member, t
		}
	}
	mb, err := a.login(login, pass)
	if err != nil {
		return "", smtp.ErrAuthFailed
	}
	if !mb.SMTP {
		return "", smtp.ErrSMTPDisabled
	}
	if target != "" && !a.opens(mb.ID, target) {
		return "", smtp.ErrAuthFailed
	}
	return mb.ID, nil
}

// opens reports whether the user may open the shared mailbox at address.
func (a *accounts) opens(userID, address string) bool {
	dir := a.directory()
	t, ok := dir.Resolve(address)
	return ok && t.Kind == policy.KindShared && dir.Rights(userID, t.ID).CanRead()
}

// splitSharedLogin splits "target*member" (Dovecot's master-user form) or
// "member\target" (the hosted suites' form).
func splitSharedLogin(username string) (target, member string, ok bool) {
	if i := strings.LastIndexByte(username, '*'); i > 0 && i < len(username)-1 {
		return username[:i], username[i+1:], true
	}
	if i := strings.IndexByte(username, '\\'); i > 0 && i < len(username)-1 {
		return username[i+1:], username[:i], true
	}
	return "", "", false
}

// imapDirectory adapts accounts to imap.Directory.
type imapDirectory struct{ *accounts }

// Login implements imap.Directory.
func (d imapDirectory) Login(username, pass string) (imap.User, error) {
	mb, err := d.login(username, pass)
	if err != nil {
		return imap.User{}, imap.ErrLoginFailed
	}
	if !mb.IMAP {
		return imap.User{}, imap.ErrIMAPDisabled
	}
	return imap.User{ID: mb.ID, Address: mb.Address}, nil
}

// Own implements imap.Directory.
func (d imapDirectory) Own(userID string) (imap.Mailbox, bool) {
	mb, ok := d.directory().Mailbox(userID)
	if !ok || mb.Kind != policy.KindUser {
		return imap.Mailbox{}, false
	}
	return imap.Mailbox{ID: mb.ID, Address: mb.Address, Quota: mb.Quota}, true
}

// Mailbox implements imap.Directory.
func (d imapDirectory) Mailbox(userID, address string) (imap.Mailbox, bool) {
	t, ok := d.directory().Resolve(address)
	if !ok || t.Kind == policy.KindGroup {
		return imap.Mailbox{}, false
	}
	return d.Access(userID, t.ID)
}

// Access implements imap.Directory.
func (d imapDirectory) Access(userID, mailboxID string) (imap.Mailbox, bool) {
	dir := d.directory()
	if _, ok := dir.Mailbox(userID); !ok {
		return imap.Mailbox{}, false
	}
	mb, ok := dir.Mailbox(mailboxID)
	if !ok {
		return imap.Mailbox{}, false
	}
	rights := dir.Rights(userID, mailboxID)
	if !rights.CanRead() {
		return imap.Mailbox{}, false
	}
	return imap.Mailbox{
		ID: mb.ID, Address: mb.Address, Quota: mb.Quota,
		ReadOnly:    rights&policy.RightFull == 0,
		SeenPerUser: mb.Kind == policy.KindShared && mb.SeenPerUser,
	}, true
}

// Shared implements imap.Directory.
func (d imapDirectory) Shared(userID string) []imap.Mailbox {
	var out []imap.Mailbox
	for _, mb := range d.directory().Reachable(userID) {
		if m, ok := d.Access(userID, mb.ID); ok {
			out = append(out, m)
		}
	}
	return out
}
