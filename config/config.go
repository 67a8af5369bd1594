// Package config reads postkasse's one TOML file (SPEC §3) into a
// validated Config, or refuses it with every problem named by file, line
// and key. Only the main package imports it: it hands each other package
// its own options. It must not import the store, the protocol packages or
// the policy package; of postkasse it imports only password (to recognise
// hashes).
//
// Decisions where the SPEC is silent:
//   - Relative paths (data_dir, tls.cert, tls.key, dkim keys) are relative
//     to the directory of the file, so the file means the same whatever
//     directory the server starts in. data_dir defaults to "./data" beside
//     the file.
//   - An absent [listen] key takes the standard port on every interface;
//     "" disables the listener (see Listen).
//   - hostname defaults to the system's host name.
//   - A user's password must be a hash that package password verifies;
//     a clear-text password is refused, not warned about.
//   - allow_insecure_auth defaults to true; the server honours it only on
//     loopback listeners.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where `postkasse` looks for its file.
const DefaultPath = "/etc/postkasse/config.toml"

// Config is a loaded, validated configuration. Addresses and domains in it
// are lower case; sizes are bytes.
type Config struct {
	File     string   // the file it was read from
	Hostname string   // lower case; default: the system's host name
	DataDir  string   // absolute
	Domains  []string // lower case, in file order
	// Postmaster is the local address (a mailbox or group) that receives
	// postmaster@ of every domain without such an address of its own;
	// "" when not set.
	Postmaster string
	Listen     Listen
	TLS        TLS
	Limits     Limits
	Outbound   Outbound
	DNS        DNS
	Inbound    Inbound
	Users      []*Mailbox // sorted by key
	Shared     []*Mailbox // sorted by key
	Groups     []*Group   // sorted by key
	DKIM       []DKIM     // sorted by domain
	Store      Store

	// ProxyProtocol is listen.proxy_protocol (SPEC §13): the load
	// balancers whose PROXY protocol header every listener reads (empty:
	// none). It is kept out of Listen so that Listen stays comparable.
	ProxyProtocol []netip.Prefix
}

// Listen holds the listener addresses ("host:port"); "" disables one.
// A key absent from the file takes the standard port on every interface:
// ":25", ":587", ":143", and ":465" and ":993" when [tls] has a
// certificate (otherwise the implicit-TLS listeners stay off). HTTP and
// HTTPS (address books and client setup) are off unless named: an upgraded
// server does not start taking ports 80 and 443 from a web server there.
// With [tls.acme] they also answer the ACME challenges (HTTP-01 on port
// 80, TLS-ALPN-01).
// Metrics (Prometheus /metrics and /healthz, SPEC §12) is off unless set.
type Listen struct {
	SMTP, Submission, Submissions, IMAP, IMAPS string
	HTTP, HTTPS                                string
	Metrics                                    string
}

// TLS names the certificate and key (PEM files, absolute paths; both ""
// when the server has no TLS or gets its certificates by ACME).
type TLS struct {
	Cert, Key         string
	AllowInsecureAuth bool
	ACME              *ACME // nil unless [tls.acme] is set
}

// ACME is [tls.acme]: certificates obtained and renewed from an ACME
// directory (RFC 8555) instead of files.
type ACME struct {
	Directory string   // default: Let's Encrypt's production directory
	Email     string   // contact of the account; may be ""
	Hosts     []string // lower case; default: [hostname]
}

// DNS is [dns]: where every lookup goes (MX, SPF, DKIM, DMARC).
type DNS struct {
	Resolver string // "host:port"; "" = the system's (/etc/resolv.conf)
}

// Inbound is [inbound]: the checks of mail from other servers on the MX
// port (SPEC §11). Each check defaults to on; TrustedNetworks, exempt
// from the checks and from every limit, defaults to loopback.
type Inbound struct {
	SPF, DKIM, DMARC bool
	TrustedNetworks  []netip.Prefix
}

// Limits are sizes in bytes and counts (SPEC §11). Defaults: 25MiB
// messages, 50GB (SI) quotas, 1000 recipients per message, 200
// connections per client address, 10 failed logins per (login, address)
// and 100 per address.
type Limits struct {
	MessageSize, UserQuota, SharedQuota int64
	RecipientsPerMessage                int

	ConnectionsPerIP  int // all listeners together, per client address
	AuthFailures      int // failed logins of one name from one address in 10 minutes
	AuthFailuresPerIP int // failed logins from one address in 10 minutes
}

// Outbound configures delivery to other servers. Defaults: queue_lifetime
// 120h, retry_after 5m, smarthost_tls "may".
type Outbound struct {
	Smarthost         string
	SmarthostUsername string
	SmarthostPassword string
	SmarthostTLS      string // "may", "starttls", "tls" or "none"
	Resolver          string // the old name of dns.resolver, copied from there
	QueueLifetime     time.Duration
	RetryAfter        time.Duration
}

// Mailbox is a [user.KEY] or [shared.KEY] table.
type Mailbox struct {
	Key       string // the permanent id: the TOML key
	Shared    bool
	Address   string // lower case
	Name      string
	Aliases   []string // lower case
	Password  string   // hash; users only
	IMAP      bool     // apps; default all three for users, false for shared mailboxes
	SMTP      bool
	DAV       bool     // address books over CardDAV
	Quota     int64    // bytes; default limits.user_quota or limits.shared_quota; 0 is unlimited
	Contacts  []string // lower case
	Forward   *Forward
	AutoReply *AutoReply
	Connected []Connected
	// Shared mailboxes only.
	Members  []string            // lower-case addresses of users or groups
	Grants   map[string][]string // lower-case address -> "read", "full", "send_as", "send_on_behalf"
	Seen     string              // "shared" (default) or "per-user"
	SentCopy bool                // default true
}

// Forward is a mailbox's forwarding rule.
type Forward struct {
	To       []string // lower case
	KeepCopy bool
}

// AutoReply is a mailbox's automatic reply.
type AutoReply struct {
	Enabled          bool
	Start, End       time.Time // zero when absent
	Subject          string
	Internal         string
	External         string
	ExternalAudience string // "none", "contacts" or "all"; default "all" with an external text, else "none"
}

// Connected is a connected account to pull mail from.
type Connected struct {
	Host         string // "host:port"
	Security     string // "tls" (default), "starttls" or "none" (loopback hosts only)
	Username     string
	Password     string        // clear text: the remote server needs it
	Folder       string        // remote folder; default "INBOX"
	Into         string        // local folder; default "INBOX"
	Interval     time.Duration // default 5m
	DeleteRemote bool
}

// Group is a [group.KEY] table.
type Group struct {
	Key                  string
	Address              string // lower case
	Name                 string
	Members              []string // lower case: users, shared mailboxes, groups or external addresses
	AllowExternalSenders bool
	SendAutoReplies      bool
}

// DKIM is a [dkim."domain"] table.
type DKIM struct {
	Domain   string // lower case, one of Config.Domains
	Selector string
	Key      string // absolute path of the PEM key
}

// Load reads and validates the file at path. Its errors are an *Errors
// when the file was read, so a caller can print every problem.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a configuration read from filename, which names the file
// in messages and anchors relative paths (data_dir, tls, dkim keys) at its
// directory. It returns either a Config or an *Errors with every problem
// it found, in file order.
func Parse(filename string, data []byte) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, parseError(filename, string(data), err)
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
