package config

import (
	"errors"
	"strings"
	"testing"
)

// marker ends the line an error is expected on.
const marker = "#<"

// TestErrorsNameFileLineAndKey appends each case's text to base (or puts
// it in place of base when it starts with "!") and expects an error that
// contains want, on the line marked with "#<" (line 0 if none is).
func TestErrorsNameFileLineAndKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src, want string }{
		{"syntax", "address = #<\n", `config.toml:6: expected value`},
		{"wrong type", "quota = 10\naliases = [\"a@contoso.test\", 5] #<\n", `user.anna.aliases: is an integer, but must be a string`},
		{"unknown key", "colour = \"red\" #<\n", `user.anna.colour: unknown key`},
		{"unknown table", "[users.bo] #<\naddress = \"bo@contoso.test\"\n", `users.bo: unknown key`},
		{"missing domains", "!hostname = \"mail.contoso.test\"\n", `config.toml: domains: name at least one domain`},
		{"bad domain", "!domains = [\"contoso.test\", \"not a domain\"] #<\n", `domains[1]: "not a domain" is not a domain name`},
		{"bad hostname", "!hostname = \"mail contoso\" #<\ndomains = [\"contoso.test\"]\n", `hostname: "mail contoso" is not a host name`},
		{"duplicate address", bo + "aliases = [\"x@contoso.test\",\n  \"Anna@Contoso.test\"] #<\n",
			`user.bo.aliases[1]: "anna@contoso.test" is already the address of user.anna`},
		{"duplicate group address", "aliases = [\"team@contoso.test\"]\n[group.team]\naddress = \"team@contoso.test\" #<\n",
			`group.team.address: "team@contoso.test" is already the address of user.anna`},
		{"alias outside domains", "aliases = [\"anna@elsewhere.example\"] #<\n", `user.anna.aliases[0]: "anna@elsewhere.example" is outside the domains this server serves (contoso.test)`},
		{"group outside domains", "[group.g]\naddress = \"g@elsewhere.example\" #<\n", `group.g.address: "g@elsewhere.example" is outside the domains`},
		{"malformed address", bo + "[shared.info]\naddress = \"Info Desk <info@contoso.test>\" #<\n", `shared.info.address: "info desk <info@contoso.test>" is not an email address`},
		{"malformed contact", "contacts = [\"boss@\"] #<\n", `user.anna.contacts[0]: "boss@" is not an email address`},
		{"no address", "[group.g] #<\nmembers = []\n", `group.g: has no address`},
		{"shared member resolves to nothing", "[shared.info]\naddress = \"info@contoso.test\"\nmembers = [\n  \"anna@contoso.test\",\n  \"ghost@contoso.test\", #<\n]\n",
			`shared.info.members[1]: "ghost@contoso.test" is not a user or group of this file`},
		{"shared member is a shared mailbox", "[shared.a]\naddress = \"a@contoso.test\"\n[shared.b]\naddress = \"b@contoso.test\"\nmembers = [\"a@contoso.test\"] #<\n",
			`shared.b.members[0]: "a@contoso.test" is not a user or group`},
		{"grant resolves to nothing", "[shared.info]\naddress = \"info@contoso.test\"\n[shared.info.grants]\n\"ghost@contoso.test\" = [\"read\"] #<\n",
			`shared.info.grants."ghost@contoso.test": "ghost@contoso.test" is not a user or group`},
		{"group member resolves to nothing", "[group.g]\naddress = \"g@contoso.test\"\nmembers = [\"anna@contoso.test\", \"partner@fabrikam.example\", \"ghost@contoso.test\"] #<\n",
			`group.g.members[2]: "ghost@contoso.test" is in a local domain but names no user, shared mailbox or group`},
		{"group member malformed", "[group.g]\naddress = \"g@contoso.test\"\nmembers = [\"not-an-address\"] #<\n", `group.g.members[0]: "not-an-address" is not an email address`},
		{"forward to nothing", "[user.anna.forward]\nto = [\"ghost@contoso.test\"] #<\n", `user.anna.forward.to[0]: "ghost@contoso.test" is in a local domain`},
		{"forward to no one", "[user.anna.forward] #<\nkeep_copy = true\n", `user.anna.forward.to: name at least one address`},
		{"group cycle", "[group.a]\naddress = \"a@contoso.test\"\nmembers = [\"b@contoso.test\"] #<\n[group.b]\naddress = \"b@contoso.test\"\nmembers = [\"c@contoso.test\"]\n[group.c]\naddress = \"c@contoso.test\"\nmembers = [\"a@contoso.test\"]\n",
			`group.a.members: groups form a cycle: a@contoso.test -> b@contoso.test -> c@contoso.test -> a@contoso.test`},
		{"group contains itself", "[group.a]\naddress = \"a@contoso.test\"\nmembers = [\"A@contoso.test\"] #<\n", `groups form a cycle: a@contoso.test -> a@contoso.test`},
		{"malformed size", "quota = \"lots\" #<\n", `user.anna.quota: "lots" is not a size`},
		{"size of the wrong type", "quota = 1.5 #<\n", `user.anna.quota: a size must be a string`},
		{"malformed limit", "!" + strings.Replace(base, "[user.anna]", "[limits]\nmessage_size = \"25 MiBs\" #<\n[user.anna]", 1), `limits.message_size: "25 MiBs" is not a size`},
		{"zero connections", "!" + strings.Replace(base, "[user.anna]", "[limits]\nconnections_per_ip = 0 #<\n[user.anna]", 1), `limits.connections_per_ip: 0 is not between 1 and 1000000`},
		{"negative failures", "!" + strings.Replace(base, "[user.anna]", "[limits]\nauth_failures_per_ip = -1 #<\n[user.anna]", 1), `limits.auth_failures_per_ip: -1 is not between 1`},
		{"failures as a string", "!" + strings.Replace(base, "[user.anna]", "[limits]\nauth_failures = \"ten\" #<\n[user.anna]", 1), `limits.auth_failures: is a string, but must be an integer`},
		{"malformed network", "!" + strings.Replace(base, "[user.anna]", "[inbound]\ntrusted_networks = [\"127.0.0.0/8\",\n  \"10.0.0.0/33\"] #<\n[user.anna]", 1), `inbound.trusted_networks[1]: "10.0.0.0/33" is not a network`},
		{"network with host bits", "!" + strings.Replace(base, "[user.anna]", "[inbound]\ntrusted_networks = [\"10.1.2.3/8\"] #<\n[user.anna]", 1), `inbound.trusted_networks[0]: "10.1.2.3/8" has bits set past its mask: did you mean "10.0.0.0/8"?`},
		{"malformed duration", "!" + strings.Replace(base, "[user.anna]", "[outbound]\nretry_after = \"5 minutes\" #<\n[user.anna]", 1), `outbound.retry_after: "5 minutes" is not a positive duration`},
		{"malformed interval", "[[user.anna.connected]]\nhost = \"imap.example.org:993\"\nusername = \"a\"\ninterval = 5 #<\n", `user.anna.connected[0].interval: a duration must be a string`},
		{"malformed time", "[user.anna.auto_reply]\nenabled = true\ninternal = \"x\"\nstart = \"next tuesday\" #<\n", `user.anna.auto_reply.start: "next tuesday" is not an RFC 3339 time`},
		{"time without date", "[user.anna.auto_reply]\nstart = 08:00:00 #<\n", `user.anna.auto_reply.start: 08:00:00 has no date`},
		{"end before start", "[user.anna.auto_reply]\nstart = 2027-01-02T00:00:00Z\nend = 2026-12-20T00:00:00Z #<\n", `ends (2026-12-20T00:00:00Z) before it starts`},
		{"end equals start", "[user.anna.auto_reply]\nstart = 2027-01-02T00:00:00Z\nend = 2027-01-02T01:00:00+01:00 #<\n", `before it starts`},
		{"enabled without text", "[user.anna.auto_reply] #<\nenabled = true\n", `user.anna.auto_reply: is enabled but has neither`},
		{"bad audience", "[user.anna.auto_reply]\nexternal_audience = \"friends\" #<\n", `"friends" is not "none", "contacts" or "all"`},
		{"bad app", "apps = [\"imap\", \"pop3\"] #<\n", `user.anna.apps[1]: "pop3" is not "imap", "smtp" or "dav"`},
		{"bad seen", "[shared.info]\naddress = \"info@contoso.test\"\nseen = \"mine\" #<\n", `shared.info.seen: "mine" is not "shared" or "per-user"`},
		{"bad security", "[[user.anna.connected]]\nhost = \"imap.example.org:993\"\nusername = \"a\"\nsecurity = \"ssl\" #<\n", `user.anna.connected[0].security: "ssl" is not "tls", "starttls" or "none"`},
		{"clear text to the internet", "[[user.anna.connected]]\nhost = \"localhost:143\"\nusername = \"a\"\nsecurity = \"none\"\n[[user.anna.connected]]\nhost = \"imap.example.org:143\"\nusername = \"a\"\nsecurity = \"none\" #<\n",
			`user.anna.connected[1].security: "none" sends the password in the clear`},
		{"bad right", "[shared.info]\naddress = \"info@contoso.test\"\n[shared.info.grants]\n\"anna@contoso.test\" = [\"admin\"] #<\n", `"admin" is not a right (use "read", "full", "send_as", "send_on_behalf")`},
		{"bad smarthost_tls", "!" + strings.Replace(base, "[user.anna]", "[outbound]\nsmarthost = \"relay.example.net:587\"\nsmarthost_tls = \"ssl\" #<\n[user.anna]", 1), `outbound.smarthost_tls: "ssl" is not one of`},
		{"postmaster names nothing", "!" + strings.Replace(base, "[user.anna]", "postmaster = \"ghost@contoso.test\" #<\n[user.anna]", 1), `postmaster: "ghost@contoso.test" is not the address of a user, shared mailbox or group`},
		{"no recipients per message", "!" + strings.Replace(base, "[user.anna]", "[limits]\nrecipients_per_message = 0 #<\n[user.anna]", 1), `limits.recipients_per_message: 0 is not between 1 and 1000000`},
		{"user without password", "[user.carl] #<\naddress = \"carl@contoso.test\"\n", `user.carl: has no password`},
		{"plain password", "[user.bo]\naddress = \"bo@contoso.test\"\npassword = \"hunter2\" #<\n", `user.bo.password: is not a password hash`},
		{"shared password", "[shared.info]\naddress = \"info@contoso.test\"\npassword = \"x\" #<\n", `shared.info.password: a shared mailbox has no password`},
		{"members on a user", "members = [\"anna@contoso.test\"] #<\n", `user.anna.members: applies to shared mailboxes only`},
		{"bad listen", "!" + strings.Replace(base, "[user.anna]", "[listen]\nsmtp = \"nonsense\" #<\n[user.anna]", 1), `listen.smtp: "nonsense" is not host:port`},
		{"listen port out of range", "!" + strings.Replace(base, "[user.anna]", "[listen]\nimap = \"127.0.0.1:99999\" #<\n[user.anna]", 1), `listen.imap: "127.0.0.1:99999" is not host:port`},
		{"implicit TLS without a certificate", "!" + strings.Replace(base, "[user.anna]", "[listen]\nimaps = \":993\" #<\n[user.anna]", 1), `listen.imaps: implicit TLS needs [tls] cert and key`},
		{"tls cert without key", "!" + strings.Replace(base, "[user.anna]", "[tls]\ncert = \"/etc/ssl/mail.pem\" #<\n[user.anna]", 1), `tls.cert: has no key`},
		{"tls file missing", "!" + strings.Replace(base, "[user.anna]", "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\" #<\n[user.anna]", 1), `tls.key: cannot be read`},
		{"dkim for a foreign domain", "[dkim.\"fabrikam.example\"] #<\nselector = \"pk1\"\nkey = \"/nonexistent.pem\"\n", `dkim."fabrikam.example": "fabrikam.example" is not one of the domains`},
		{"shared key used by a user", "[shared.anna] #<\naddress = \"info@contoso.test\"\n", `shared.anna: has the same key as user.anna`},
		{"empty key", "[user.\"\"] #<\naddress = \"x@contoso.test\"\npassword = \"` + hash + `\"\n", `user."": needs a name`},
		{"empty group key", "[group.\"\"] #<\naddress = \"g@contoso.test\"\n", `group."": needs a name`},
		{"dkim twice", "[dkim.\"contoso.test\"] #<\nselector = \"a\"\nkey = \"config.go\"\n[dkim.\"Contoso.test\"]\nselector = \"b\"\nkey = \"config.go\"\n", `dkim."contoso.test": "contoso.test" has a second key table`},
		{"dkim key missing", "[dkim.\"contoso.test\"] #<\nselector = \"pk1\"\n", `dkim."contoso.test".key: is missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := base + tc.src
			if strings.HasPrefix(tc.src, "!") {
				src = tc.src[1:]
			}
			line := markedLine(src)
			_, err := Parse("config.toml", []byte(src))
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want *Errors", err)
			}
			for _, e := range *errs {
				if strings.Contains(e.Error(), tc.want) {
					if e.Line != line || !strings.HasPrefix(e.Error(), "config.toml:") {
						t.Errorf("%q at line %d, want %d", e.Error(), e.Line, line)
					}
					return
				}
			}
			t.Fatalf("errors:\n%v\nwant one containing %q", err, tc.want)
		})
	}
}

// markedLine returns the line of src that ends with the marker, or 0 when
// none does: a problem with nothing to point at, such as a missing key.
func markedLine(src string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.HasSuffix(l, marker) {
			return i + 1
		}
	}
	return 0
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "c.toml", Line: 42, Key: "user.anna.aliases[1]", Msg: "x"}, "c.toml:42: user.anna.aliases[1]: x"},
		{Error{File: "c.toml", Key: "domains", Msg: "x"}, "c.toml: domains: x"},
		{Error{File: "c.toml", Line: 3, Msg: "x"}, "c.toml:3: x"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
