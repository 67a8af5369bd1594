package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
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
	ids    map[string]string // mailbox key -> the table that defined it
}

// errorf records a problem at a key path such as "user.anna.aliases[1]";
// the path also finds the line.
func (v *validator) errorf(key, format string, args ...any) {
	v.errs = append(v.errs, Error{File: v.file, Line: v.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// build checks the file top-down: global settings, then every address
// definition, then the references between them, which need all addresses.
func (v *validator) build(raw *rawConfig, base string) *Config {
	cfg := &Config{}
	v.global(raw, cfg, base)
	v.owners, v.kinds, v.ids = make(map[string]string), make(map[string]string), make(map[string]string)
	cfg.Users = v.mailboxes("user", raw.User, cfg, false)
	cfg.Shared = v.mailboxes("shared", raw.Shared, cfg, true)
	cfg.Groups = v.groups(raw.Group)
	v.references(cfg)
	v.postmaster(raw.Postmaster, cfg)
	v.cycles(cfg.Groups)
	cfg.DKIM = v.dkim(raw.DKIM, base)
	return cfg
}

// global reads the top-level keys and the tables that configure the
// server as a whole.
func (v *validator) global(raw *rawConfig, cfg *Config, base string) {
	cfg.Hostname = strings.ToLower(strings.TrimSpace(raw.Hostname))
	switch {
	case cfg.Hostname != "":
		if !validDomain(cfg.Hostname) {
			v.errorf("hostname", "%q is not a host name such as \"mail.example.org\"", raw.Hostname)
		}
	default:
		h, err := os.Hostname()
		if err != nil || !validDomain(strings.ToLower(h)) {
			v.errorf("hostname", "is missing and the system's host name %q cannot stand in for it", h)
		}
		cfg.Hostname = strings.ToLower(h)
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
	v.proxyProtocol(raw, cfg)
	v.tls(raw, cfg, base)
	v.limits(raw, cfg)
	v.outbound(raw, cfg)
	v.dns(raw, cfg)
	v.inbound(raw, cfg)
	v.acme(raw, cfg)
	v.store(raw, cfg)
}

// listen fills the listener addresses. An absent key takes the standard
// port on every interface (":25", ":587", ":143", and ":465"/":993" when
// [tls] is set), so a production file can leave [listen] out; "" disables
// a listener. The example file names loopback ports for development.
func (v *validator) listen(raw *rawConfig, cfg *Config) {
	tlsOn := raw.TLS.Cert != "" || raw.TLS.ACME != nil
	pick := func(key string, p *string, def string) string {
		if p == nil {
			return def
		}
		addr := strings.TrimSpace(*p)
		if addr == "" {
			return ""
		}
		if !validHostPort(addr) {
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
		HTTP:        pick("http", l.HTTP, ""),
		HTTPS:       pick("https", l.HTTPS, ""),
		Metrics:     pick("metrics", l.Metrics, ""),
	}
	if tlsOn {
		return
	}
	if cfg.Listen.Submissions != "" {
		v.errorf("listen.submissions", "implicit TLS needs [tls] cert and key")
	}
	if cfg.Listen.IMAPS != "" {
		v.errorf("listen.imaps", "implicit TLS needs [tls] cert and key")
	}
	if cfg.Listen.HTTPS != "" {
		v.errorf("listen.https", "TLS needs [tls] cert and key, or [tls.acme]")
	}
}

// tls resolves the certificate and key. allow_insecure_auth defaults to
// true: the server honours it only on loopback listeners, so it never lets
// a password cross the network in clear text, and a development setup
// without certificates works as it is.
func (v *validator) tls(raw *rawConfig, cfg *Config, base string) {
	t := raw.TLS
	cfg.TLS.AllowInsecureAuth = t.AllowInsecureAuth == nil || *t.AllowInsecureAuth
	switch {
	case t.Cert != "" && t.Key == "":
		v.errorf("tls.cert", "has no key: set tls.key to the certificate's private key")
		return
	case t.Cert == "" && t.Key != "":
		v.errorf("tls.key", "has no certificate: set tls.cert as well")
		return
	case t.Cert == "":
		return
	}
	cfg.TLS.Cert, cfg.TLS.Key = absolute(base, t.Cert), absolute(base, t.Key)
	v.readable("tls.cert", cfg.TLS.Cert)
	v.readable("tls.key", cfg.TLS.Key)
}

// readable reports a file the server will need but cannot open.
func (v *validator) readable(key, path string) {
	f, err := os.Open(path)
	if err != nil {
		v.errorf(key, "cannot be read: %v", err)
		return
	}
	f.Close()
}

// limits reads [limits]: 25MiB messages, 50GB quotas unless set.
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
	cfg.Limits.RecipientsPerMessage = v.count("limits.recipients_per_message", raw.Limits.RecipientsPerMessage, 1000)
	cfg.Limits.ConnectionsPerIP = v.count("limits.connections_per_ip", raw.Limits.ConnectionsPerIP, 200)
	cfg.Limits.AuthFailures = v.count("limits.auth_failures", raw.Limits.AuthFailures, 10)
	cfg.Limits.AuthFailuresPerIP = v.count("limits.auth_failures_per_ip", raw.Limits.AuthFailuresPerIP, 100)
}

// maxCount bounds the count limits: more is a typo, not a setting.
const maxCount = 1_000_000

// count reads a positive count limit; def when absent.
func (v *validator) count(key string, val *int64, def int) int {
	if val == nil {
		return def
	}
	if *val < 1 || *val > maxCount {
		v.errorf(key, "%d is not between 1 and %d", *val, maxCount)
		return def
	}
	return int(*val)
}

// outbound reads [outbound]; smarthost_tls defaults to "may" (STARTTLS
// when the smarthost offers it, as for MX delivery).
func (v *validator) outbound(raw *rawConfig, cfg *Config) {
	o := raw.Outbound
	cfg.Outbound = Outbound{
		Smarthost: o.Smarthost, SmarthostUsername: o.SmarthostUsername, SmarthostPassword: o.SmarthostPassword,
		SmarthostTLS: o.SmarthostTLS, Resolver: o.Resolver, QueueLifetime: 120 * time.Hour, RetryAfter: 5 * time.Minute,
	}
	for key, addr := range map[string]string{"outbound.smarthost": o.Smarthost, "outbound.resolver": o.Resolver} {
		if addr != "" && !validHostPort(addr) {
			v.errorf(key, "%q is not host:port", addr)
		}
	}
	if cfg.Outbound.SmarthostTLS == "" {
		cfg.Outbound.SmarthostTLS = "may"
	}
	if !slices.Contains([]string{"may", "starttls", "tls", "none"}, cfg.Outbound.SmarthostTLS) {
		v.errorf("outbound.smarthost_tls", "%q is not one of \"may\", \"starttls\", \"tls\", \"none\"", o.SmarthostTLS)
	}
	if o.SmarthostUsername != "" && cfg.Outbound.SmarthostTLS == "none" {
		v.errorf("outbound.smarthost_username", "credentials are only sent over TLS: set smarthost_tls to \"may\", \"starttls\" or \"tls\"")
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

// dkim reads the [dkim."domain"] tables; a key is only for a local domain.
func (v *validator) dkim(raw map[string]rawDKIM, base string) []DKIM {
	var out []DKIM
	for _, domain := range sortedKeys(raw) {
		r := raw[domain]
		p := "dkim." + quoteKeyPart(domain)
		d := DKIM{Domain: strings.ToLower(domain), Selector: r.Selector}
		switch {
		case !v.domains[d.Domain]:
			v.errorf(p, "%q is not one of the domains", domain)
		case slices.ContainsFunc(out, func(o DKIM) bool { return o.Domain == d.Domain }):
			v.errorf(p, "%q has a second key table (domains are case-insensitive)", domain)
		}
		switch {
		case r.Selector == "":
			v.errorf(p+".selector", "is missing")
		case !validDomain(strings.ToLower(r.Selector)):
			v.errorf(p+".selector", "%q is not a DNS label such as \"pk1\"", r.Selector)
		}
		if r.Key == "" {
			v.errorf(p+".key", "is missing: `postkasse dkim-keygen %s` writes one", domain)
		} else {
			d.Key = absolute(base, r.Key)
			v.readable(p+".key", d.Key)
		}
		out = append(out, d)
	}
	return out
}
