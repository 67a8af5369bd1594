package config

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"postkasse.dev/postkasse/password"
)

// claim records an address as defined at key; it reports malformed
// addresses, duplicates and addresses outside the domains.
func (v *validator) claim(key, addr, kind string) bool {
	if !validAddress(addr) {
		v.errorf(key, "%q is not an email address", addr)
		return false
	}
	if !v.domains[domainOf(addr)] {
		v.errorf(key, "%q is outside the domains this server serves (%s)", addr, strings.Join(sortedKeys(v.domains), ", "))
		return false
	}
	if prev, ok := v.owners[addr]; ok {
		v.errorf(key, "%q is already the address of %s", addr, prev)
		return false
	}
	v.owners[addr], v.kinds[addr] = ownerName(key), kind
	return true
}

// ownerName turns "user.anna.aliases[1]" into "user.anna".
func ownerName(key string) string {
	parts := strings.SplitN(key, ".", 3)
	if len(parts) < 2 {
		return key
	}
	return parts[0] + "." + parts[1]
}

// mailboxes builds the [user.KEY] or [shared.KEY] tables in key order.
func (v *validator) mailboxes(kind string, raw map[string]rawMailbox, cfg *Config, shared bool) []*Mailbox {
	var out []*Mailbox
	for _, key := range sortedKeys(raw) {
		r := raw[key]
		p := kind + "." + quoteKeyPart(key)
		// The key is the mailbox's id in the store, one namespace for
		// users and shared mailboxes.
		switch prev, dup := v.ids[key]; {
		case strings.TrimSpace(key) == "":
			v.errorf(p, "needs a name: the key is the mailbox's permanent id")
		case dup:
			v.errorf(p, "has the same key as %s: keys are mailbox ids and must differ", prev)
		}
		v.ids[key] = p
		mb := &Mailbox{Key: key, Shared: shared, Name: r.Name, IMAP: true, SMTP: true, DAV: true, Seen: "shared", SentCopy: true}
		mb.Address = strings.ToLower(strings.TrimSpace(r.Address))
		if mb.Address == "" {
			v.errorf(p, "has no address")
		} else {
			v.claim(p+".address", mb.Address, kind)
		}
		for i, a := range r.Aliases {
			a = strings.ToLower(strings.TrimSpace(a))
			if v.claim(fmt.Sprintf("%s.aliases[%d]", p, i), a, kind) {
				mb.Aliases = append(mb.Aliases, a)
			}
		}
		if shared {
			mb.Quota = cfg.Limits.SharedQuota
			v.sharedOnly(p, &r, mb)
		} else {
			mb.Quota = cfg.Limits.UserQuota
			v.userOnly(p, &r, mb)
		}
		if r.Quota != nil {
			if n, err := parseSize(r.Quota); err != nil {
				v.errorf(p+".quota", "%v", err)
			} else {
				mb.Quota = n
			}
		}
		mb.Contacts = v.addressList(p+".contacts", r.Contacts)
		mb.Forward = v.forward(p+".forward", r.Forward)
		mb.AutoReply = v.autoReply(p+".auto_reply", r.AutoReply)
		mb.Connected = v.connected(p+".connected", r.Connected)
		out = append(out, mb)
	}
	return out
}

// userOnly checks the keys of a [user.KEY] table that shared mailboxes lack:
// the password and the mail apps. A password that is not a hash is refused,
// not merely warned about: a clear-text password in the file would be a
// secret on disk, and nobody could log in with it anyway.
func (v *validator) userOnly(p string, r *rawMailbox, mb *Mailbox) {
	switch {
	case r.Password == "":
		v.errorf(p, "has no password: run `postkasse passwd` and set password to the hash it prints")
	case !password.IsHash(r.Password):
		v.errorf(p+".password", "is not a password hash: run `postkasse passwd` and paste the hash it prints")
	}
	mb.Password = r.Password
	sharedKeys := []struct {
		key string
		set bool
	}{{"members", r.Members != nil}, {"grants", r.Grants != nil}, {"seen", r.Seen != ""}, {"sent_copy", r.SentCopy != nil}}
	for _, k := range sharedKeys {
		if k.set {
			v.errorf(p+"."+k.key, "applies to shared mailboxes only")
		}
	}
	if r.Apps == nil {
		return
	}
	mb.IMAP, mb.SMTP, mb.DAV = false, false, false
	for i, app := range *r.Apps {
		switch strings.ToLower(strings.TrimSpace(app)) {
		case "imap":
			mb.IMAP = true
		case "smtp":
			mb.SMTP = true
		case "dav":
			mb.DAV = true
		default:
			v.errorf(fmt.Sprintf("%s.apps[%d]", p, i), "%q is not \"imap\", \"smtp\" or \"dav\"", app)
		}
	}
}

// sharedOnly checks the keys of a [shared.KEY] table. Members and grants
// are checked later, once every address of the file is known.
func (v *validator) sharedOnly(p string, r *rawMailbox, mb *Mailbox) {
	mb.IMAP, mb.SMTP, mb.DAV = false, false, false
	if r.Password != "" {
		v.errorf(p+".password", "a shared mailbox has no password: members reach it with their own")
	}
	if r.Apps != nil {
		v.errorf(p+".apps", "a shared mailbox has no login of its own; apps are set per user")
	}
	switch r.Seen {
	case "", "shared":
	case "per-user":
		mb.Seen = r.Seen
	default:
		v.errorf(p+".seen", "%q is not \"shared\" or \"per-user\"", r.Seen)
	}
	if r.SentCopy != nil {
		mb.SentCopy = *r.SentCopy
	}
	mb.Members = r.Members
	mb.Grants = r.Grants
}

func (v *validator) forward(p string, r *rawForward) *Forward {
	if r == nil {
		return nil
	}
	if len(r.To) == 0 {
		v.errorf(p+".to", "name at least one address to forward to")
	}
	return &Forward{KeepCopy: r.KeepCopy, To: v.addressList(p+".to", r.To)}
}

// addressList lower-cases a list of addresses (any domain), reporting the
// ones that are not addresses. A refused entry is kept, so that later
// checks name it by its own index; the Config is not returned anyway.
func (v *validator) addressList(key string, list []string) []string {
	var out []string
	for i, a := range list {
		a = strings.ToLower(strings.TrimSpace(a))
		if !validAddress(a) {
			v.errorf(fmt.Sprintf("%s[%d]", key, i), "%q is not an email address", a)
		}
		out = append(out, a)
	}
	return out
}

func (v *validator) autoReply(p string, r *rawAutoReply) *AutoReply {
	if r == nil {
		return nil
	}
	ar := &AutoReply{Enabled: r.Enabled, Subject: r.Subject, Internal: r.Internal, External: r.External, ExternalAudience: r.ExternalAudience}
	if ar.ExternalAudience == "" {
		// Without an explicit audience, an external text is meant to be sent.
		ar.ExternalAudience = "all"
		if r.External == "" {
			ar.ExternalAudience = "none"
		}
	}
	if !slices.Contains([]string{"none", "contacts", "all"}, ar.ExternalAudience) {
		v.errorf(p+".external_audience", "%q is not \"none\", \"contacts\" or \"all\"", r.ExternalAudience)
	}
	ar.Start = v.optionalTime(p+".start", r.Start)
	ar.End = v.optionalTime(p+".end", r.End)
	if !ar.Start.IsZero() && !ar.End.IsZero() && !ar.Start.Before(ar.End) {
		v.errorf(p+".end", "ends (%s) before it starts (%s)", ar.End.Format(time.RFC3339), ar.Start.Format(time.RFC3339))
	}
	if ar.Enabled && ar.Internal == "" && ar.External == "" {
		v.errorf(p, "is enabled but has neither an internal nor an external text")
	}
	return ar
}

// optionalTime parses a time that may be absent (the zero time).
func (v *validator) optionalTime(key string, val any) time.Time {
	if val == nil {
		return time.Time{}
	}
	t, err := parseTime(val)
	if err != nil {
		v.errorf(key, "%v", err)
	}
	return t
}

func (v *validator) connected(p string, raw []rawConnected) []Connected {
	var out []Connected
	for i, r := range raw {
		key := fmt.Sprintf("%s[%d]", p, i)
		c := Connected{Host: r.Host, Security: r.Security, Username: r.Username, Password: r.Password,
			Folder: r.Folder, Into: r.Into, Interval: 5 * time.Minute, DeleteRemote: r.DeleteRemote}
		if c.Security == "" {
			c.Security = "tls"
		}
		if c.Folder == "" {
			c.Folder = "INBOX"
		}
		if c.Into == "" {
			c.Into = "INBOX"
		}
		host, _, err := net.SplitHostPort(c.Host)
		if err != nil {
			v.errorf(key+".host", "%q is not host:port (e.g. \"imap.example.org:993\")", c.Host)
		}
		switch c.Security {
		case "tls", "starttls":
		case "none":
			if err == nil && !isLoopback(host) {
				v.errorf(key+".security", "\"none\" sends the password in the clear: only allowed to a loopback host")
			}
		default:
			v.errorf(key+".security", "%q is not \"tls\", \"starttls\" or \"none\"", c.Security)
		}
		if c.Username == "" {
			v.errorf(key+".username", "is missing")
		}
		if r.Interval != nil {
			if d, err := parseDuration(r.Interval); err != nil {
				v.errorf(key+".interval", "%v", err)
			} else {
				c.Interval = d
			}
		}
		out = append(out, c)
	}
	return out
}
