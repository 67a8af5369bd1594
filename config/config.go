// Package config reads postkasse's one TOML file (SPEC §3) into a
// validated Config, or refuses it with every problem named by file, line
// and key. Only the main package imports it: it hands each other package
// its own options.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where `postkasse` looks for its file.
const DefaultPath = "/etc/postkasse/config.toml"

// Config is a loaded, validated configuration.
type Config struct {
	File     string // the file it was read from
	Hostname string
	DataDir  string // absolute
	Domains  []string
	Listen   Listen
	TLS      TLS
	Limits   Limits
	Outbound Outbound
	Users    []*Mailbox // sorted by key
	Shared   []*Mailbox // sorted by key
	Groups   []*Group   // sorted by key
	DKIM     []DKIM     // sorted by domain
}

// Listen holds the listener addresses; "" disables one.
type Listen struct {
	SMTP, Submission, Submissions, IMAP, IMAPS string
}

// TLS names the certificate and key (PEM files, absolute paths).
type TLS struct {
	Cert, Key         string
	AllowInsecureAuth bool
}

// Limits are sizes in bytes.
type Limits struct {
	MessageSize, UserQuota, SharedQuota int64
}

// Outbound configures delivery to other servers.
type Outbound struct {
	Smarthost         string
	SmarthostUsername string
	SmarthostPassword string
	SmarthostTLS      string // "starttls", "tls" or "none"
	Resolver          string
	QueueLifetime     time.Duration
	RetryAfter        time.Duration
}

// Mailbox is a [user.KEY] or [shared.KEY] table.
type Mailbox struct {
	Key       string
	Shared    bool
	Address   string // lower case
	Name      string
	Aliases   []string // lower case
	Password  string   // hash; users only
	IMAP      bool
	SMTP      bool
	Quota     int64
	Contacts  []string
	Forward   *Forward
	AutoReply *AutoReply
	Connected []Connected
	// Shared mailboxes only.
	Members  []string
	Grants   map[string][]string // address -> rights
	Seen     string              // "shared" or "per-user"
	SentCopy bool
}

// Forward is a mailbox's forwarding rule.
type Forward struct {
	To       []string
	KeepCopy bool
}

// AutoReply is a mailbox's automatic reply.
type AutoReply struct {
	Enabled          bool
	Start, End       time.Time
	Subject          string
	Internal         string
	External         string
	ExternalAudience string // "none", "contacts" or "all"
}

// Connected is a connected account to pull mail from.
type Connected struct {
	Host         string
	Security     string // "tls", "starttls" or "none"
	Username     string
	Password     string
	Folder       string
	Into         string
	Interval     time.Duration
	DeleteRemote bool
}

// Group is a [group.KEY] table.
type Group struct {
	Key                  string
	Address              string
	Name                 string
	Members              []string
	AllowExternalSenders bool
	SendAutoReplies      bool
}

// DKIM is a [dkim."domain"] table.
type DKIM struct {
	Domain   string
	Selector string
	Key      string // absolute path of the PEM key
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a configuration read from filename. Relative paths in it
// (data_dir, tls, dkim keys) are taken relative to the file's directory,
// so the file means the same whatever directory the server starts in.
func Parse(filename string, data []byte) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, parseError(filename, err)
	}
	v := &validator{file: filename, lines: newLocator(string(data))}
	for _, k := range md.Undecoded() {
		v.errorf(k.String(), "unknown key")
	}
	base := filepath.Dir(filename)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	cfg := v.build(&raw, base)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
		return nil, &v.errs
	}
	cfg.File = filename
	return cfg, nil
}

// Error is one problem in the file.
type Error struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (e Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Key + ": " + e.Msg
}

// Errors is every problem found, in file order.
type Errors []Error

func (es *Errors) Error() string {
	lines := make([]string, len(*es))
	for i, e := range *es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func parseError(filename string, err error) error {
	if pe, ok := err.(toml.ParseError); ok {
		return &Errors{{File: filename, Line: pe.Position.Line, Msg: pe.Message}}
	}
	return &Errors{{File: filename, Msg: err.Error()}}
}
