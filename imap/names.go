package imap

import (
	"strings"

	goimap "github.com/emersion/go-imap/v2"
)

// The hierarchy delimiter and the prefix of the "other users" namespace
// where shared mailboxes appear.
const (
	delim        = '/'
	sharedPrefix = "Shared"
)

// location is what an IMAP mailbox name refers to.
type location struct {
	mailbox Mailbox
	folder  string // the store's folder name; "" for a namespace node
	// node marks "Shared" and "Shared/<address>": listed, never selectable.
	node bool
}

// normalizeINBOX spells INBOX (and INBOX/...) in capitals, as IMAP treats
// it case-insensitively.
func normalizeINBOX(name string) string {
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") && (len(name) == 5 || name[5] == delim) {
		return "INBOX" + name[5:]
	}
	return name
}

// locate maps an IMAP name to a mailbox and folder the user may reach now.
// Names the user may not see are reported as nonexistent.
func (s *session) locate(name string) (location, error) {
	name = strings.TrimSuffix(name, string(delim))
	if s.homeOwn && (name == sharedPrefix || strings.HasPrefix(name, sharedPrefix+string(delim))) {
		return s.locateShared(strings.TrimPrefix(strings.TrimPrefix(name, sharedPrefix), string(delim)))
	}
	home, ok := s.recheck(s.home)
	if !ok {
		return location{}, errAccessGone
	}
	name = normalizeINBOX(name)
	if !validFolderName(name) {
		return location{}, errNonExistent
	}
	return location{mailbox: home, folder: name}, nil
}

func (s *session) locateShared(rest string) (location, error) {
	if rest == "" {
		return location{node: true}, nil
	}
	address, folder, _ := strings.Cut(rest, string(delim))
	mb, ok := s.srv.opts.Directory.Mailbox(s.user.ID, address)
	if !ok || mb.ID == s.user.ID {
		return location{}, errNonExistent
	}
	if folder == "" {
		return location{mailbox: mb, node: true}, nil
	}
	if err := s.ensureFolders(mb); err != nil {
		return location{}, err
	}
	folder = normalizeINBOX(folder)
	if !validFolderName(folder) {
		return location{}, errNonExistent
	}
	return location{mailbox: mb, folder: folder}, nil
}

// Limits on the names CREATE and RENAME make, so a client cannot build
// names no other client (or file system, on export) can handle.
const (
	maxNameBytes = 1024
	maxNameDepth = 32
)

var (
	errNameTooLong = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeLimit, Text: "Mailbox name is too long (at most 1024 bytes)"}
	errNameTooDeep = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeLimit, Text: "Mailbox name has too many levels (at most 32)"}
	errNameDots    = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Mailbox name levels may not be . or .."}
)

// checkNewName refuses a name a new folder may not have.
func checkNewName(name string) error {
	if len(name) > maxNameBytes {
		return errNameTooLong
	}
	parts := strings.Split(name, string(delim))
	if len(parts) > maxNameDepth {
		return errNameTooDeep
	}
	for _, p := range parts {
		if p == "." || p == ".." {
			return errNameDots
		}
	}
	return nil
}

// validFolderName refuses empty hierarchy levels and wildcard characters.
func validFolderName(name string) bool {
	if name == "" || strings.ContainsAny(name, "*%\r\n\x00") {
		return false
	}
	for _, part := range strings.Split(name, string(delim)) {
		if part == "" {
			return false
		}
	}
	return true
}

// displayName is the IMAP name of a folder of mb as this session sees it.
func (s *session) displayName(mb Mailbox, folder string) string {
	if mb.ID == s.home.ID {
		return folder
	}
	return sharedPrefix + string(delim) + mb.Address + string(delim) + folder
}

// ensureFolders creates a shared mailbox's default folders the first time
// this session reaches it, so a member can select them before any mail came.
func (s *session) ensureFolders(mb Mailbox) error {
	if s.ensured[mb.ID] {
		return nil
	}
	if _, err := s.srv.opts.Store.EnsureFolders(s.ctx, mb.ID, defaultFolders); err != nil {
		return mapError(s.srv.log, err)
	}
	if s.ensured == nil {
		s.ensured = make(map[string]bool)
	}
	s.ensured[mb.ID] = true
	return nil
}
