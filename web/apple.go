package web

import (
	"net/http"
	"net/url"
	"strings"

	"howett.net/plist"

	"postkasse.dev/postkasse/policy"
)

// The Apple configuration profile: the user's mail account, their CardDAV
// account, and one more mail account per shared mailbox they are a member
// of, logging in as shared*user (SPEC §6), so the team's mailbox is on the
// phone like any other account. Passwords are not in it: the device asks.

type profile struct {
	PayloadType        string    `plist:"PayloadType"`
	PayloadVersion     int       `plist:"PayloadVersion"`
	PayloadIdentifier  string    `plist:"PayloadIdentifier"`
	PayloadUUID        string    `plist:"PayloadUUID"`
	PayloadDisplayName string    `plist:"PayloadDisplayName"`
	PayloadDescription string    `plist:"PayloadDescription"`
	PayloadContent     []payload `plist:"PayloadContent"`
}

// payload is one account; a map, because mail and CardDAV payloads share
// nothing but the Payload keys.
type payload map[string]any

func (s *Server) serveAppleProfile(w http.ResponseWriter, r *http.Request) {
	dir := s.opts.Directory()
	me, ok := dir.Mailbox(userOf(r.Context()))
	if !ok {
		http.NotFound(w, r)
		return
	}
	base := reverseDNS(s.opts.Hostname) + ".postkasse." + me.ID
	p := profile{
		PayloadType: "Configuration", PayloadVersion: 1, PayloadIdentifier: base,
		PayloadUUID: nameUUID("profile", s.opts.Hostname, me.ID), PayloadDisplayName: "Mail at " + s.opts.Hostname,
		PayloadDescription: "Mail, shared mailboxes and contacts of " + me.Address,
	}
	if pl, ok := s.mailPayload(base, me, me, me.Address); ok {
		p.PayloadContent = append(p.PayloadContent, pl)
	}
	for _, shared := range memberMailboxes(dir, me.ID) {
		if pl, ok := s.mailPayload(base, shared, me, shared.Address+"*"+me.Address); ok {
			p.PayloadContent = append(p.PayloadContent, pl)
		}
	}
	if me.DAV && (s.opts.Ports.HTTP > 0 || s.opts.Ports.HTTPS > 0) {
		p.PayloadContent = append(p.PayloadContent, s.cardDAVPayload(base, me))
	}
	data, err := plist.MarshalIndent(p, plist.XMLFormat, "\t")
	if err != nil {
		s.log.Error("apple profile", "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+me.ID+`.mobileconfig"`)
	w.Write(data)
}

// mailPayload is an IMAP account for the mailbox mb, logged in as login.
func (s *Server) mailPayload(base string, mb, me *policy.Mailbox, login string) (payload, bool) {
	in, okIn := s.imapEndpoint()
	out, okOut := s.submissionEndpoint()
	if !okIn || !okOut {
		return nil, false
	}
	name := mb.Name
	if name == "" {
		name = mb.Address
	}
	return payload{
		"PayloadType": "com.apple.mail.managed", "PayloadVersion": 1,
		"PayloadIdentifier": base + ".mail." + mb.ID, "PayloadUUID": nameUUID("mail", s.opts.Hostname, me.ID, mb.ID),
		"PayloadDisplayName": mb.Address, "EmailAccountDescription": mb.Address,
		"EmailAccountName": name, "EmailAccountType": "EmailTypeIMAP", "EmailAddress": mb.Address,
		"IncomingMailServerAuthentication": "EmailAuthPassword", "IncomingMailServerHostName": s.opts.Hostname,
		"IncomingMailServerPortNumber": in.port, "IncomingMailServerUseSSL": in.implicit || in.starttls,
		"IncomingMailServerUsername":       login,
		"OutgoingMailServerAuthentication": "EmailAuthPassword", "OutgoingMailServerHostName": s.opts.Hostname,
		"OutgoingMailServerPortNumber": out.port, "OutgoingMailServerUseSSL": out.implicit || out.starttls,
		"OutgoingMailServerUsername": login, "OutgoingPasswordSameAsIncomingPassword": true,
	}, true
}

// cardDAVPayload is the user's address books.
func (s *Server) cardDAVPayload(base string, me *policy.Mailbox) payload {
	raw, useSSL := s.davURL()
	u, _ := url.Parse(raw)
	port := s.opts.Ports.HTTP
	if useSSL {
		port = s.opts.Ports.HTTPS
	}
	return payload{
		"PayloadType": "com.apple.carddav.account", "PayloadVersion": 1,
		"PayloadIdentifier": base + ".carddav", "PayloadUUID": nameUUID("carddav", s.opts.Hostname, me.ID),
		"PayloadDisplayName": "Contacts", "CardDAVAccountDescription": "Contacts at " + s.opts.Hostname,
		"CardDAVHostName": u.Hostname(), "CardDAVPort": port, "CardDAVUseSSL": useSSL,
		"CardDAVPrincipalURL": principalPath(me.ID), "CardDAVUsername": me.Address,
	}
}

// reverseDNS turns mail.contoso.test into test.contoso.mail, the form of
// payload identifiers.
func reverseDNS(host string) string {
	parts := strings.Split(host, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}
