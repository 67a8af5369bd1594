package config

import (
	"fmt"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"postkasse.dev/postkasse/password"
)

// validator builds a Config from the raw decode, collecting every problem.
type validator struct {
	file  string
	lines *locator
	errs  Errors

	domains map[string]bool
	// owners maps every address to the key path that defined it.
	owners map[string]string
	kinds  map[string]string // address -> "user", "shared" or "group"
}

func (v *validator) errorf(key, format string, args ...any) {
	v.errs = append(v.errs, Error{File: v.file, Line: v.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) build(raw *rawConfig, base string) *Config {
	cfg := &Config{}
	v.global(raw, cfg, base)
	v.owners, v.kinds = make(map[string]string), make(map[string]string)
	cfg.Users = v.mailboxes("user", raw.User, cfg, false)
	cfg.Shared = v.mailboxes("shared", raw.Shared, cfg, true)
	cfg.Groups = v.groups(raw.Group)
	v.members(cfg)
	v.cycles(cfg.Groups)
	cfg.DKIM = v.dkim(raw.DKIM, base)
	return cfg
}

func (v *validator) global(raw *rawConfig, cfg *Config, base string) {
	cfg.Hostname = strings.ToLower(strings.TrimSpace(raw.Hostname))
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			v.errorf("hostname", "is missing and the system has no host name")
		}
		cfg.Hostname = h
	}
	v.domains = make(map[string]bool)
	if len(raw.Domains) == 0 {
		v.errorf("domains", "name at least one domain this server receives mail for")
	}
	for i, d := range raw.Domains {
		d = strings.ToLower(strings.TrimSpace(d))
		key := fmt.Sprintf("domains[%d]", i)
		switch {
		case !validDomain(d):
			v.errorf(key, "%q is not a domain name", d)
		case v.domains[d]:
			v.errorf(key, "%q is listed twice", d)
		default:
			v.domains[d] = true
			cfg.Domains = append(cfg.Domains, d)
		}
	}
	dataDir := "./data"
	if raw.DataDir != nil {
		dataDir = *raw.DataDir
	}
	if strings.TrimSpace(dataDir) == "" {
		v.errorf("data_dir", "must name a directory")
	}
	cfg.DataDir = absolute(base, dataDir)
	v.listen(raw, cfg)
	v.tls(raw, cfg, base)
	v.limits(raw, cfg)
	v.outbound(raw, cfg)
}

func (v *validator) listen(raw *rawConfig, cfg *Config) {
	tlsOn := raw.TLS.Cert != ""
	pick := func(key string, p *string, def string) string {
		if p == nil {
			return def
		}
		addr := strings.TrimSpace(*p)
		if addr == "" {
			return ""
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			v.errorf("listen."+key, "%q is not host:port (e.g. \"0.0.0.0:25\" or \":25\")", addr)
		}
		return addr
	}
	implicit := func(port string) string {
		if tlsOn {
			return port
		}
		return ""
	}
	l := raw.Listen
	cfg.Listen = Listen{
		SMTP:        pick("smtp", l.SMTP, ":25"),
		Submission:  pick("submission", l.Submission, ":587"),
		Submissions: pick("submissions", l.Submissions, implicit(":465")),
		IMAP:        pick("imap", l.IMAP, ":143"),
		IMAPS:       pick("imaps", l.IMAPS, implicit(":993")),
	}
	if !tlsOn && (cfg.Listen.Submissions != "" || cfg.Listen.IMAPS != "") {
		key := "listen.submissions"
		if cfg.Listen.Submissions == "" {
			key = "listen.imaps"
		}
		v.errorf(key, "implicit TLS needs [tls] cert and key")
	}
}

func (v *validator) tls(raw *rawConfig, cfg *Config, base string) {
	t := raw.TLS
	cfg.TLS.AllowInsecureAuth = t.AllowInsecureAuth == nil || *t.AllowInsecureAuth
	if (t.Cert == "") != (t.Key == "") {
		v.errorf("tls", "cert and key go together: set both or neither")
		return
	}
	if t.Cert == "" {
		return
	}
	cfg.TLS.Cert, cfg.TLS.Key = absolute(base, t.Cert), absolute(base, t.Key)
	for key, path := range map[string]string{"tls.cert": cfg.TLS.Cert, "tls.key": cfg.TLS.Key} {
		if _, err := os.Stat(path); err != nil {
			v.errorf(key, "cannot read %s: %v", path, err)
		}
	}
}

func (v *validator) limits(raw *rawConfig, cfg *Config) {
	size := func(key string, val any, def int64) int64 {
		if val == nil {
			return def
		}
		n, err := parseSize(val)
		if err != nil {
			v.errorf(key, "%v", err)
			return def
		}
		return n
	}
	const gb = 1000 * 1000 * 1000
	cfg.Limits = Limits{
		MessageSize: size("limits.message_size", raw.Limits.MessageSize, 25<<20),
		UserQuota:   size("limits.user_quota", raw.Limits.UserQuota, 50*gb),
		SharedQuota: size("limits.shared_quota", raw.Limits.SharedQuota, 50*gb),
	}
	if cfg.Limits.MessageSize < 1024 {
		v.errorf("limits.message_size", "must be at least 1KiB")
	}
}

func (v *validator) outbound(raw *rawConfig, cfg *Config) {
	o := raw.Outbound
	cfg.Outbound = Outbound{
		Smarthost: o.Smarthost, SmarthostUsername: o.SmarthostUsername, SmarthostPassword: o.SmarthostPassword,
		SmarthostTLS: o.SmarthostTLS, Resolver: o.Resolver, QueueLifetime: 120 * time.Hour, RetryAfter: 5 * time.Minute,
	}
	for key, addr := range map[string]string{"outbound.smarthost": o.Smarthost, "outbound.resolver": o.Resolver} {
		if _, _, err := net.SplitHostPort(addr); addr != "" && err != nil {
			v.errorf(key, "%q is not host:port", addr)
		}
	}
	if cfg.Outbound.SmarthostTLS == "" {
		cfg.Outbound.SmarthostTLS = "starttls"
	}
	if !slices.Contains([]string{"starttls", "tls", "none"}, cfg.Outbound.SmarthostTLS) {
		v.errorf("outbound.smarthost_tls", "%q is not one of \"starttls\", \"tls\", \"none\"", o.SmarthostTLS)
	}
	if o.SmarthostUsername != "" && cfg.Outbound.SmarthostTLS == "none" {
		v.errorf("outbound.smarthost_username", "credentials are only sent over TLS: set smarthost_tls to \"starttls\" or \"tls\"")
	}
	if o.QueueLifetime != nil {
		if d, err := parseDuration(o.QueueLifetime); err != nil {
			v.errorf("outbound.queue_lifetime", "%v", err)
		} else {
			cfg.Outbound.QueueLifetime = d
		}
	}
	if o.RetryAfter != nil {
		if d, err := parseDuration(o.RetryAfter); err != nil {
			v.errorf("outbound.retry_after", "%v", err)
		} else {
			cfg.Outbound.RetryAfter = d
		}
	}
}

// claim records an address as defined at key; it reports duplicates and
// addresses outside the domains.
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

func (v *validator) mailboxes(kind string, raw map[string]rawMailbox, cfg *Config, shared bool) []*Mailbox {
	var out []*Mailbox
	for _, key := range sortedKeys(raw) {
		r := raw[key]
		p := kind + "." + quoteKeyPart(key)
		mb := &Mailbox{Key: key, Shared: shared, Name: r.Name, IMAP: true, SMTP: true, Seen: "shared", SentCopy: true}
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
		v.mailboxCommon(p, &r, mb, cfg, shared)
		out = append(out, mb)
	}
	return out
}

func (v *validator) mailboxCommon(p string, r *rawMailbox, mb *Mailbox, cfg *Config, shared bool) {
	if shared {
		mb.Quota = cfg.Limits.SharedQuota
		if r.Password != "" {
			v.errorf(p+".password", "a shared mailbox has no password: members reach it with their own")
		}
		if r.Apps != nil {
			v.errorf(p+".apps", "a shared mailbox has no login of its own; apps are set per user")
		}
		switch r.Seen {
		case "", "shared", "per-user":
			if r.Seen != "" {
				mb.Seen = r.Seen
			}
		default:
			v.errorf(p+".seen", "%q is not \"shared\" or \"per-user\"", r.Seen)
		}
		if r.SentCopy != nil {
			mb.SentCopy = *r.SentCopy
		}
		mb.Members = r.Members
		mb.Grants = r.Grants
	} else {
		mb.Quota = cfg.Limits.UserQuota
		switch {
		case r.Password == "":
			v.errorf(p, "has no password: run `postkasse passwd` and set password to the hash it prints")
		case !password.IsHash(r.Password):
			v.errorf(p+".password", "is not a password hash: run `postkasse passwd` and paste the hash it prints")
		}
		mb.Password = r.Password
		for _, key := range []string{"members", "grants", "seen", "sent_copy"} {
			if key == "members" && r.Members != nil || key == "grants" && r.Grants != nil || key == "seen" && r.Seen != "" || key == "sent_copy" && r.SentCopy != nil {
				v.errorf(p+"."+key, "applies to shared mailboxes only")
			}
		}
		if r.Apps != nil {
			mb.IMAP, mb.SMTP = false, false
			for i, app := range *r.Apps {
				switch strings.ToLower(app) {
				case "imap":
					mb.IMAP = true
				case "smtp":
					mb.SMTP = true
				default:
					v.errorf(fmt.Sprintf("%s.apps[%d]", p, i), "%q is not \"imap\" or \"smtp\"", app)
				}
			}
		}
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
// ones that are not addresses.
func (v *validator) addressList(key string, list []string) []string {
	var out []string
	for i, a := range list {
		a = strings.ToLower(strings.TrimSpace(a))
		if !validAddress(a) {
			v.errorf(fmt.Sprintf("%s[%d]", key, i), "%q is not an email address", a)
			continue
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
		ar.ExternalAudience = "all"
		if r.External == "" {
			ar.ExternalAudience = "none"
		}
	}
	if !slices.Contains([]string{"none", "contacts", "all"}, ar.ExternalAudience) {
		v.errorf(p+".external_audience", "%q is not \"none\", \"contacts\" or \"all\"", r.ExternalAudience)
	}
	for key, val := range map[string]any{"start": r.Start, "end": r.End} {
		if val == nil {
			continue
		}
		t, err := parseTime(val)
		if err != nil {
			v.errorf(p+"."+key, "%v", err)
			continue
		}
		if key == "start" {
			ar.Start = t
		} else {
			ar.End = t
		}
	}
	if !ar.Start.IsZero() && !ar.End.IsZero() && !ar.Start.Before(ar.End) {
		v.errorf(p+".end", "ends (%s) before it starts (%s)", ar.End.Format(time.RFC3339), ar.Start.Format(time.RFC3339))
	}
	if ar.Enabled && ar.Internal == "" && ar.External == "" {
		v.errorf(p, "is enabled but has neither an internal nor an external text")
	}
	return ar
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

func (v *validator) groups(raw map[string]rawGroup) []*Group {
	var out []*Group
	for _, key := range sortedKeys(raw) {
		r := raw[key]
		p := "group." + quoteKeyPart(key)
		g := &Group{Key: key, Name: r.Name, Members: r.Members, AllowExternalSenders: r.AllowExternalSenders, SendAutoReplies: r.SendAutoReplies}
		g.Address = strings.ToLower(strings.TrimSpace(r.Address))
		if g.Address == "" {
			v.errorf(p, "has no address")
		} else {
			v.claim(p+".address", g.Address, "group")
		}
		out = append(out, g)
	}
	return out
}

// members checks that shared-mailbox members and grants and group members
// name something.
func (v *validator) members(cfg *Config) {
	for _, mb := range cfg.Shared {
		p := "shared." + quoteKeyPart(mb.Key)
		for i, m := range mb.Members {
			m = strings.ToLower(strings.TrimSpace(m))
			mb.Members[i] = m
			if k := v.kinds[m]; k != "user" && k != "group" {
				v.errorf(fmt.Sprintf("%s.members[%d]", p, i), "%q is not a user or group of this file", m)
			}
		}
		grants := make(map[string][]string, len(mb.Grants))
		for addr, rights := range mb.Grants {
			a := strings.ToLower(strings.TrimSpace(addr))
			key := p + ".grants." + quoteKeyPart(addr)
			if k := v.kinds[a]; k != "user" && k != "group" {
				v.errorf(key, "%q is not a user or group of this file", addr)
			}
			for _, r := range rights {
				if !slices.Contains([]string{"read", "full", "send_as", "send_on_behalf"}, r) {
					v.errorf(key, "%q is not a right (use \"read\", \"full\", \"send_as\", \"send_on_behalf\")", r)
				}
			}
			grants[a] = rights
		}
		mb.Grants = grants
	}
	for _, g := range cfg.Groups {
		p := "group." + quoteKeyPart(g.Key)
		for i, m := range g.Members {
			m = strings.ToLower(strings.TrimSpace(m))
			g.Members[i] = m
			key := fmt.Sprintf("%s.members[%d]", p, i)
			switch {
			case !validAddress(m):
				v.errorf(key, "%q is not an email address", m)
			case v.domains[domainOf(m)] && v.kinds[m] == "":
				v.errorf(key, "%q is in a local domain but names no user, shared mailbox or group", m)
			}
		}
	}
}

// cycles refuses groups that contain themselves, directly or not.
func (v *validator) cycles(groups []*Group) {
	byAddr := make(map[string]*Group)
	for _, g := range groups {
		byAddr[g.Address] = g
	}
	state := make(map[string]int) // 0 new, 1 on path, 2 done
	var visit func(g *Group, path []string) bool
	visit = func(g *Group, path []string) bool {
		switch state[g.Key] {
		case 1:
			v.errorf("group."+quoteKeyPart(g.Key)+".members", "groups form a cycle: %s", strings.Join(append(path, g.Address), " -> "))
			return true
		case 2:
			return false
		}
		state[g.Key] = 1
		for _, m := range g.Members {
			if child, ok := byAddr[m]; ok && visit(child, append(path, g.Address)) {
				state[g.Key] = 2
				return true
			}
		}
		state[g.Key] = 2
		return false
	}
	for _, g := range groups {
		visit(g, nil)
	}
}

func (v *validator) dkim(raw map[string]rawDKIM, base string) []DKIM {
	var out []DKIM
	for _, domain := range sortedKeys(raw) {
		r := raw[domain]
		p := "dkim." + quoteKeyPart(domain)
		d := DKIM{Domain: strings.ToLower(domain), Selector: r.Selector}
		if !v.domains[d.Domain] {
			v.errorf(p, "%q is not one of the domains", domain)
		}
		if r.Selector == "" {
			v.errorf(p+".selector", "is missing")
		}
		if r.Key == "" {
			v.errorf(p+".key", "is missing: `postkasse dkim-keygen %s` writes one", domain)
		} else {
			d.Key = absolute(base, r.Key)
			if _, err := os.Stat(d.Key); err != nil {
				v.errorf(p+".key", "cannot read %s: %v", d.Key, err)
			}
		}
		out = append(out, d)
	}
	return out
}

func absolute(base, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(base, path)
}

func validAddress(addr string) bool {
	if strings.ContainsAny(addr, " <>\"(),;:\\[]") {
		return false
	}
	a, err := mail.ParseAddress(addr)
	return err == nil && a.Address == addr && strings.Count(addr, "@") == 1 && validDomain(domainOf(addr))
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
