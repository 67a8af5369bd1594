package web

import (
	"html/template"
	"net/http"
)

// The page at /: where to point a mail client, for a person with a phone
// in their hand. Plain HTML, no script, one column.

type pageData struct {
	Hostname            string
	IMAP, Submission    endpoint
	HasIMAP, HasSubmit  bool
	DAVURL              string
	AutoconfigURL       string
	ProfileURL          string
	SharedLoginExample  string
	SharedLoginExample2 string
}

// Security names the endpoint's encryption as mail clients' settings do.
func (e endpoint) Security() string {
	switch {
	case e.implicit:
		return "SSL/TLS"
	case e.starttls:
		return "STARTTLS"
	}
	return "none (this machine only)"
}

// Port is the endpoint's port number.
func (e endpoint) Port() int { return e.port }

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mail at {{.Hostname}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40em; margin: 0 auto; padding: 1em; line-height: 1.5; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3em .5em .3em 0; vertical-align: top; }
code, a { overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1>Mail at {{.Hostname}}</h1>
<p>Log in everywhere with your mail address and your password.</p>

<h2>Set up in one step</h2>
<ul>
<li><b>iPhone, iPad, Mac:</b> open <a href="{{.ProfileURL}}">the configuration profile</a> on the device, log in, and install it from Settings. It adds your mail, your shared mailboxes and your contacts.</li>
<li><b>Thunderbird</b> and most other clients: just type your address and password; they find the settings at <a href="{{.AutoconfigURL}}">{{.AutoconfigURL}}</a>.</li>
</ul>

<h2>By hand</h2>
<table>
<tr><th>Server</th><td><code>{{.Hostname}}</code></td></tr>
{{if .HasIMAP}}<tr><th>Incoming (IMAP)</th><td>port {{.IMAP.Port}}, security {{.IMAP.Security}}</td></tr>{{end}}
{{if .HasSubmit}}<tr><th>Outgoing (SMTP)</th><td>port {{.Submission.Port}}, security {{.Submission.Security}}, with login</td></tr>{{end}}
<tr><th>Contacts (CardDAV)</th><td><code>{{.DAVURL}}</code></td></tr>
<tr><th>User name</th><td>your mail address</td></tr>
</table>

<h2>A shared mailbox as an account of its own</h2>
<p>For a phone that does not show shared folders, add the shared mailbox as another account with your own password and the user name
<code>{{.SharedLoginExample}}</code> (or <code>{{.SharedLoginExample2}}</code>). You can read and send as the shared mailbox with it.</p>
</body>
</html>
`))

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	davURL, _ := s.davURL()
	d := pageData{
		Hostname: s.opts.Hostname, DAVURL: davURL,
		AutoconfigURL:       "/.well-known/autoconfig/mail/config-v1.1.xml",
		ProfileURL:          "/apple/profile.mobileconfig",
		SharedLoginExample:  "shared@example*you@example",
		SharedLoginExample2: `you@example\shared@example`,
	}
	if domains := s.opts.Directory().Domains(); len(domains) > 0 {
		d.SharedLoginExample = "info@" + domains[0] + "*you@" + domains[0]
		d.SharedLoginExample2 = "you@" + domains[0] + `\info@` + domains[0]
	}
	d.IMAP, d.HasIMAP = s.imapEndpoint()
	d.Submission, d.HasSubmit = s.submissionEndpoint()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, d); err != nil {
		s.log.Warn("page", "err", err)
	}
}
