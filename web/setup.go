package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"postkasse.dev/postkasse/policy"
)

// How clients should connect: the listeners that exist, preferring
// implicit TLS, as RFC 8314 recommends.

// endpoint is one server a client connects to.
type endpoint struct {
	port     int
	implicit bool // TLS from the first byte
	starttls bool // TLS after STARTTLS
}

func (s *Server) imapEndpoint() (endpoint, bool) {
	p := s.opts.Ports
	switch {
	case p.IMAPS > 0:
		return endpoint{port: p.IMAPS, implicit: true}, true
	case p.IMAP > 0:
		return endpoint{port: p.IMAP, starttls: s.opts.TLS}, true
	}
	return endpoint{}, false
}

func (s *Server) submissionEndpoint() (endpoint, bool) {
	p := s.opts.Ports
	switch {
	case p.Submissions > 0:
		return endpoint{port: p.Submissions, implicit: true}, true
	case p.Submission > 0:
		return endpoint{port: p.Submission, starttls: s.opts.TLS}, true
	}
	return endpoint{}, false
}

// davURL is where clients find CardDAV, and whether it is HTTPS.
func (s *Server) davURL() (string, bool) {
	p := s.opts.Ports
	if p.HTTPS > 0 {
		return "https://" + hostPort(s.opts.Hostname, p.HTTPS, 443) + "/.well-known/carddav", true
	}
	return "http://" + hostPort(s.opts.Hostname, p.HTTP, 80) + "/.well-known/carddav", false
}

func hostPort(host string, port, standard int) string {
	if port == standard || port == 0 {
		return host
	}
	return host + ":" + strconv.Itoa(port)
}

// socketType is Thunderbird's name for an endpoint's security.
func (e endpoint) socketType() string {
	switch {
	case e.implicit:
		return "SSL"
	case e.starttls:
		return "STARTTLS"
	}
	return "plain"
}

// Thunderbird's autoconfig (its "clientConfig" format, version 1.1).

type clientConfig struct {
	XMLName  xml.Name      `xml:"clientConfig"`
	Version  string        `xml:"version,attr"`
	Provider emailProvider `xml:"emailProvider"`
	Books    []addressBook `xml:"addressBook"`
}

type emailProvider struct {
	ID          string         `xml:"id,attr"`
	Domains     []string       `xml:"domain"`
	DisplayName string         `xml:"displayName"`
	ShortName   string         `xml:"displayShortName"`
	Incoming    []mailServer   `xml:"incomingServer"`
	Outgoing    []mailServer   `xml:"outgoingServer"`
	Docs        *documentation `xml:"documentation,omitempty"`
}

type mailServer struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`
	Authentication string `xml:"authentication"`
	Username       string `xml:"username"`
}

type documentation struct {
	URL   string `xml:"url,attr"`
	Descr string `xml:"descr"`
}

type addressBook struct {
	Type           string `xml:"type,attr"`
	Username       string `xml:"username"`
	Authentication string `xml:"authentication"`
	ServerURL      string `xml:"serverURL"`
}

// serveAutoconfig answers Thunderbird, with no login, for any address of
// the server's domains (or without an address).
func (s *Server) serveAutoconfig(w http.ResponseWriter, r *http.Request) {
	dir := s.opts.Directory()
	if addr := r.URL.Query().Get("emailaddress"); addr != "" {
		_, domain, ok := strings.Cut(addr, "@")
		if !ok || !dir.IsLocalDomain(domain) {
			http.Error(w, "Not a domain of this server.", http.StatusNotFound)
			return
		}
	}
	cfg := clientConfig{Version: "1.1", Provider: emailProvider{
		ID: s.opts.Hostname, Domains: dir.Domains(), DisplayName: s.opts.Hostname, ShortName: s.opts.Hostname,
	}}
	if e, ok := s.imapEndpoint(); ok {
		cfg.Provider.Incoming = append(cfg.Provider.Incoming, mailServer{
			Type: "imap", Hostname: s.opts.Hostname, Port: e.port, SocketType: e.socketType(),
			Authentication: "password-cleartext", Username: "%EMAILADDRESS%",
		})
	}
	if e, ok := s.submissionEndpoint(); ok {
		cfg.Provider.Outgoing = append(cfg.Provider.Outgoing, mailServer{
			Type: "smtp", Hostname: s.opts.Hostname, Port: e.port, SocketType: e.socketType(),
			Authentication: "password-cleartext", Username: "%EMAILADDRESS%",
		})
	}
	if u, _ := s.davURL(); s.opts.Ports.HTTP > 0 || s.opts.Ports.HTTPS > 0 {
		cfg.Books = append(cfg.Books, addressBook{
			Type: "carddav", Username: "%EMAILADDRESS%", Authentication: "http-basic", ServerURL: u,
		})
	}
	writeXML(w, "application/xml", cfg)
}

// Outlook's autodiscover, "plain old XML" flavour.

type autodiscoverRequest struct {
	Request struct {
		EMailAddress string `xml:"EMailAddress"`
	} `xml:"Request"`
}

type autodiscoverResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
		Account struct {
			AccountType string       `xml:"AccountType"`
			Action      string       `xml:"Action"`
			Protocols   []adProtocol `xml:"Protocol"`
		} `xml:"Account"`
	}
}

type adProtocol struct {
	Type           string `xml:"Type"`
	Server         string `xml:"Server"`
	Port           int    `xml:"Port"`
	LoginName      string `xml:"LoginName"`
	DomainRequired string `xml:"DomainRequired"`
	SPA            string `xml:"SPA"`
	SSL            string `xml:"SSL"`
	Encryption     string `xml:"Encryption,omitempty"`
	AuthRequired   string `xml:"AuthRequired"`
}

// serveAutodiscover answers Outlook with the IMAP and SMTP settings of
// the address it asks about.
func (s *Server) serveAutodiscover(w http.ResponseWriter, r *http.Request) {
	var req autodiscoverRequest
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil || xml.Unmarshal(data, &req) != nil {
		http.Error(w, "Send an autodiscover request.", http.StatusBadRequest)
		return
	}
	addr := strings.TrimSpace(req.Request.EMailAddress)
	_, domain, ok := strings.Cut(addr, "@")
	if !ok || !s.opts.Directory().IsLocalDomain(domain) {
		http.Error(w, "Not a domain of this server.", http.StatusNotFound)
		return
	}
	var resp autodiscoverResponse
	resp.Response.Account.AccountType, resp.Response.Account.Action = "email", "settings"
	add := func(typ string, e endpoint) {
		p := adProtocol{Type: typ, Server: s.opts.Hostname, Port: e.port, LoginName: addr,
			DomainRequired: "off", SPA: "off", SSL: "off", AuthRequired: "on"}
		switch {
		case e.implicit:
			p.SSL, p.Encryption = "on", "SSL"
		case e.starttls:
			p.SSL, p.Encryption = "on", "TLS"
		}
		resp.Response.Account.Protocols = append(resp.Response.Account.Protocols, p)
	}
	if e, ok := s.imapEndpoint(); ok {
		add("IMAP", e)
	}
	if e, ok := s.submissionEndpoint(); ok {
		add("SMTP", e)
	}
	writeXML(w, "application/xml", resp)
}

func writeXML(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	enc.Encode(v)
}

// nameUUID is a stable UUID made from names, for payloads and cards that
// must keep their identity from one download to the next.
func nameUUID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:16])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// memberMailboxes are the shared mailboxes userID is a member of (full
// access), which the Apple profile adds as accounts of their own.
func memberMailboxes(dir *policy.Directory, userID string) []*policy.Mailbox {
	var out []*policy.Mailbox
	for _, mb := range dir.Reachable(userID) {
		if dir.Rights(userID, mb.ID).Has(policy.RightFull) {
			out = append(out, mb)
		}
	}
	return out
}
