package imap

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"postkasse.dev/postkasse/store"
)

// defaultFolders are created for every mailbox on first use (SPEC §6).
var defaultFolders = []store.FolderSpec{
	{Name: "INBOX"},
	{Name: "Sent", SpecialUse: `\Sent`},
	{Name: "Drafts", SpecialUse: `\Drafts`},
	{Name: "Trash", SpecialUse: `\Trash`},
	{Name: "Junk", SpecialUse: `\Junk`},
	{Name: "Archive", SpecialUse: `\Archive`},
}

// DefaultFolders returns the folders every mailbox has, so other parts of
// the server (submission's Sent copy) file into the same ones.
func DefaultFolders() []store.FolderSpec { return append([]store.FolderSpec(nil), defaultFolders...) }

// session is one IMAP connection.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards user, home, homeOwn and selected against Revalidate,
	// which reads them from another goroutine; the session's own
	// goroutine changes them only under mu.
	mu   sync.Mutex
	user User
	// home is the mailbox whose folders form the personal namespace: the
	// user's own, or a shared mailbox opened as an account.
	home     Mailbox
	homeOwn  bool
	selected *selection
	// ensured remembers shared mailboxes whose folders exist.
	ensured map[string]bool
}

func (s *Server) newSession(c *imapserver.Conn) *session {
	ctx, cancel := context.WithCancel(s.ctx)
	sess := &session{srv: s, conn: c, ctx: ctx, cancel: cancel}
	s.track(sess, true)
	return sess
}

// Close ends the session.
func (s *session) Close() error {
	s.unselect()
	s.cancel()
	s.srv.track(s, false)
	return nil
}

func (s *session) remote() string {
	if c := s.conn.NetConn(); c != nil {
		return c.RemoteAddr().String()
	}
	return ""
}

func (s *session) userAddress() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user.Address
}

// Login implements LOGIN with the forms of SPEC §6: a user's address, or
// target*member and member\target to open a shared mailbox as an account.
func (s *session) Login(username, password string) error {
	return s.login(username, password, "")
}

// AuthenticateMechanisms lists the SASL mechanisms: PLAIN, whose
// authorization identity opens a shared mailbox as an account.
func (s *session) AuthenticateMechanisms() []string { return []string{sasl.Plain} }

// Authenticate starts SASL PLAIN.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	if !strings.EqualFold(mech, sasl.Plain) {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "Unsupported authentication mechanism"}
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if strings.EqualFold(identity, username) {
			identity = ""
		}
		return s.login(username, password, identity)
	}), nil
}

// Unauthenticate returns the session to the not-authenticated state.
func (s *session) Unauthenticate() error {
	s.unselect()
	s.mu.Lock()
	s.user, s.home, s.homeOwn = User{}, Mailbox{}, false
	s.mu.Unlock()
	return nil
}

func (s *session) login(username, password, target string) error {
	err := s.guardedLogin(username, password, target)
	s.srv.recordLogin(err)
	if err != nil && s.srv.opts.AuthFailureDelay > 0 {
		select {
		case <-time.After(s.srv.opts.AuthFailureDelay):
		case <-s.ctx.Done():
		}
	}
	return err
}

// tryLogin checks the credentials and, when they are good, opens the
// session's home mailbox.
func (s *session) tryLogin(username, password, target string) error {
	log := s.srv.log.With("remote", s.remote(), "username", username)
	user, err := s.srv.opts.Directory.Login(username, password)
	if err != nil && target == "" {
		if t, member, ok := splitMasterLogin(username); ok {
			target = t
			user, err = s.srv.opts.Directory.Login(member, password)
		}
	}
	if err != nil {
		log.Info("imap login refused", "reason", err.Error())
		if errors.Is(err, ErrIMAPDisabled) {
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeContactAdmin, Text: "IMAP is disabled for this mailbox"}
		}
		return imapserver.ErrAuthFailed
	}
	home, ok := s.srv.opts.Directory.Own(user.ID)
	if !ok {
		return imapserver.ErrAuthFailed
	}
	homeOwn := true
	if target != "" {
		mb, ok := s.srv.opts.Directory.Mailbox(user.ID, target)
		if !ok || mb.ID == user.ID {
			log.Info("imap login refused", "reason", "no access to "+target)
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeAuthorizationFailed, Text: "Not authorized for " + target}
		}
		home, homeOwn = mb, false
	}
	if _, err := s.srv.opts.Store.EnsureFolders(s.ctx, home.ID, defaultFolders); err != nil {
		log.Error("imap login: create folders", "err", err)
		return errInternal(s.srv.log, err)
	}
	s.mu.Lock()
	s.user, s.home, s.homeOwn = user, home, homeOwn
	s.mu.Unlock()
	log.Info("imap login", "user", user.Address, "mailbox", home.Address)
	return nil
}

// splitMasterLogin splits "target*member" or "member\target".
func splitMasterLogin(username string) (target, member string, ok bool) {
	if i := strings.LastIndexByte(username, '*'); i > 0 && i < len(username)-1 {
		return username[:i], username[i+1:], true
	}
	if i := strings.IndexByte(username, '\\'); i > 0 && i < len(username)-1 {
		return username[i+1:], username[:i], true
	}
	return "", "", false
}

// AppendLimit advertises APPENDLIMIT.
func (s *session) AppendLimit() uint32 { return s.srv.opts.AppendLimit }

// Namespace implements NAMESPACE: the personal namespace, and shared
// mailboxes in the "other users" slot under Shared/.
func (s *session) Namespace() (*goimap.NamespaceData, error) {
	data := &goimap.NamespaceData{Personal: []goimap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}
	if s.homeOwn {
		data.Other = []goimap.NamespaceDescriptor{{Prefix: sharedPrefix + string(delim), Delim: delim}}
	}
	return data, nil
}

// access turns a user's current rights on a mailbox into a store access.
func (s *session) access(mb Mailbox) store.Access {
	return store.Access{Account: mb.ID, Viewer: s.user.ID, SeenPerUser: mb.SeenPerUser, ReadOnly: mb.ReadOnly}
}

// recheck returns the user's current access to a mailbox, as the directory
// has it now.
func (s *session) recheck(mb Mailbox) (Mailbox, bool) {
	if mb.ID == s.user.ID {
		return s.srv.opts.Directory.Own(s.user.ID)
	}
	return s.srv.opts.Directory.Access(s.user.ID, mb.ID)
}

// lostAccess says why the session must end, or "".
func (s *session) lostAccess() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.user.ID == "" {
		return ""
	}
	if _, ok := s.srv.opts.Directory.Own(s.user.ID); !ok {
		return "Account removed"
	}
	if !s.homeOwn {
		if _, ok := s.recheck(s.home); !ok {
			return "Access to " + s.home.Address + " was removed"
		}
	}
	if sel := s.selected; sel != nil {
		if _, ok := s.recheck(sel.mailbox); !ok {
			return "Access to " + sel.mailbox.Address + " was removed"
		}
	}
	return ""
}
