package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-vcard"
	"howett.net/plist"
)

// directoryQuery asks the directory for the cards whose FN contains text,
// in vCard version.
func directoryQuery(text, version string) []byte {
	return []byte(`<?xml version="1.0"?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
<D:prop><D:getetag/><C:address-data content-type="text/vcard" version="` + version + `"/></D:prop>
<C:filter><C:prop-filter name="FN"><C:text-match match-type="contains">` + text + `</C:text-match></C:prop-filter></C:filter>
</C:addressbook-query>`)
}

// reportCards returns the cards of a multistatus answer.
func reportCards(t *testing.T, body []byte) []vcard.Card {
	t.Helper()
	var ms struct {
		Responses []struct {
			Data string `xml:"propstat>prop>address-data"`
		} `xml:"response"`
	}
	if err := xml.Unmarshal(body, &ms); err != nil {
		t.Fatalf("multistatus: %v\n%s", err, body)
	}
	var out []vcard.Card
	for _, r := range ms.Responses {
		card, err := vcard.NewDecoder(strings.NewReader(r.Data)).Decode()
		if err != nil {
			t.Fatalf("card: %v\n%s", err, r.Data)
		}
		out = append(out, card)
	}
	return out
}

func TestDirectoryListsEveryoneAndGroups(t *testing.T) {
	t.Parallel()
	ts := startServer(t, davConfig)
	dir := "/dav/bo/books/directory/"
	query := func(text, version string) []vcard.Card {
		code, body, _ := ts.davDo("bo@contoso.test", "bo-secret", "REPORT", dir, "application/xml", directoryQuery(text, version), "Depth", "1")
		if code != http.StatusMultiStatus {
			t.Fatalf("REPORT: %d\n%s", code, body)
		}
		return reportCards(t, body)
	}
	anna := query("Anna", "3.0")
	if len(anna) != 1 || !strings.Contains(strings.Join(anna[0].Values("EMAIL"), " "), "support@contoso.test") {
		t.Fatalf("anna's card: %+v", anna)
	}
	info := query("Contoso Info", "3.0")
	if len(info) != 1 || !strings.Contains(strings.Join(info[0].Values("EMAIL"), " "), "kontakt@contoso.test") {
		t.Fatalf("info's card: %+v", info)
	}
	if all := query("", "3.0"); len(all) != 5 { // anna, bo, carl, info, sales
		t.Fatalf("%d cards in the directory, want 5", len(all))
	}
	v3 := query("Sales", "3.0")
	if len(v3) != 1 || v3[0].Value("X-ADDRESSBOOKSERVER-KIND") != "group" || v3[0].Value("VERSION") != "3.0" {
		t.Fatalf("3.0 group card: %+v", v3)
	}
	members := v3[0].Values("X-ADDRESSBOOKSERVER-MEMBER")
	if len(members) != 3 || !contains(members, anna[0].Value("UID")) || !contains(members, info[0].Value("UID")) || !contains(members, "mailto:partner@fabrikam.example") {
		t.Fatalf("3.0 members %v; anna is %s, info %s", members, anna[0].Value("UID"), info[0].Value("UID"))
	}
	v4 := query("Sales", "4.0")
	if len(v4) != 1 || v4[0].Value("KIND") != "group" || v4[0].Value("VERSION") != "4.0" || len(v4[0].Values("MEMBER")) != 3 {
		t.Fatalf("4.0 group card: %+v", v4)
	}
	// A GET asking for 4.0 gets it too, with the same ETag as 3.0.
	_, b3, h3 := ts.davDo("bo@contoso.test", "bo-secret", "GET", dir+"group-sales.vcf", "", nil)
	_, b4, h4 := ts.davDo("bo@contoso.test", "bo-secret", "GET", dir+"group-sales.vcf", "", nil, "Accept", "text/vcard; version=4.0")
	if !bytes.Contains(b3, []byte("VERSION:3.0")) || !bytes.Contains(b4, []byte("KIND:group")) || h3.Get("ETag") != h4.Get("ETag") {
		t.Fatalf("GET 3.0 (%s):\n%s\nGET 4.0 (%s):\n%s", h3.Get("ETag"), b3, h4.Get("ETag"), b4)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Anna replies to contacts only: the file lists none, her book lists
// friend@partner.example.
func TestAutoReplyToContactsInTheBook(t *testing.T) {
	t.Parallel()
	sk := newSink(t, "127.0.0.1")
	ts := startServer(t, `
[outbound]
smarthost = "`+sk.addr+`"
smarthost_tls = "none"

[user.anna.auto_reply]
enabled  = true
internal = "Away."
external = "Anna is away (external text)"
external_audience = "contacts"
`)
	card := "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Friend\r\nEMAIL:Friend@Partner.example\r\nEND:VCARD\r\n"
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PUT", "/dav/anna/books/contacts/friend.vcf", "text/vcard", []byte(card)); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	stranger := "From: stranger@partner.example\nTo: anna@contoso.test\nSubject: hello\nMessage-ID: <s1@partner.example>\n\nhi\n"
	if err := ts.send("stranger@partner.example", []string{"anna@contoso.test"}, stranger); err != nil {
		t.Fatal(err)
	}
	friend := strings.ReplaceAll(stranger, "stranger@", "friend@")
	if err := ts.send("friend@partner.example", []string{"anna@contoso.test"}, friend); err != nil {
		t.Fatal(err)
	}
	reply := sk.wait(t, 1)[0]
	if reply.To[0] != "friend@partner.example" || !strings.Contains(reply.Data, "Anna is away (external text)") {
		t.Fatalf("reply to %v:\n%s", reply.To, reply.Data)
	}
	// Each reply was queued before its message's 250: with the queue
	// empty, every reply there will be has arrived.
	waitQueueEmpty(t, ts)
	if n := len(sk.messages()); n != 1 {
		t.Fatalf("%d replies, want 1 (none to the stranger)", n)
	}
}

func waitQueueEmpty(t *testing.T, ts *testServer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := ts.srv.store.QueueList(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d messages", len(msgs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClientSetupFiles(t *testing.T) {
	t.Parallel()
	ts := startServer(t, davConfig)
	port := func(addr string) int {
		i := strings.LastIndexByte(addr, ':')
		n, _ := strconv.Atoi(addr[i+1:])
		return n
	}
	for _, path := range []string{"/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"} {
		code, body, _ := ts.davDo("", "", "GET", path+"?emailaddress=anna%40contoso.test", "", nil)
		var cfg struct {
			Domains  []string `xml:"emailProvider>domain"`
			Incoming []struct {
				Type     string `xml:"type,attr"`
				Hostname string `xml:"hostname"`
				Port     int    `xml:"port"`
			} `xml:"emailProvider>incomingServer"`
			Outgoing []struct {
				Hostname string `xml:"hostname"`
				Port     int    `xml:"port"`
			} `xml:"emailProvider>outgoingServer"`
			Book struct {
				URL string `xml:"serverURL"`
			} `xml:"addressBook"`
		}
		if code != http.StatusOK || xml.Unmarshal(body, &cfg) != nil {
			t.Fatalf("%s: %d\n%s", path, code, body)
		}
		if len(cfg.Incoming) != 1 || cfg.Incoming[0].Type != "imap" || cfg.Incoming[0].Hostname != "mail.contoso.test" || cfg.Incoming[0].Port != port(ts.imap) ||
			len(cfg.Outgoing) != 1 || cfg.Outgoing[0].Port != port(ts.sub) || !strings.HasSuffix(cfg.Book.URL, ":"+strconv.Itoa(port(ts.http))+"/.well-known/carddav") {
			t.Fatalf("%s names the wrong servers:\n%s", path, body)
		}
	}
	if code, _, _ := ts.davDo("", "", "GET", "/mail/config-v1.1.xml?emailaddress=x%40elsewhere.example", "", nil); code != http.StatusNotFound {
		t.Errorf("autoconfig for a foreign domain: %d, want 404", code)
	}
	code, body, _ := ts.davDo("", "", "POST", "/autodiscover/autodiscover.xml", "text/xml",
		[]byte(`<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>anna@contoso.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`))
	var ad struct {
		Protocols []struct {
			Type  string `xml:"Type"`
			Port  int    `xml:"Port"`
			Login string `xml:"LoginName"`
		} `xml:"Response>Account>Protocol"`
	}
	if code != http.StatusOK || xml.Unmarshal(body, &ad) != nil || len(ad.Protocols) != 2 || ad.Protocols[0].Port != port(ts.imap) || ad.Protocols[1].Login != "anna@contoso.test" {
		t.Fatalf("autodiscover: %d\n%s", code, body)
	}
	if code, _, _ := ts.davDo("", "", "GET", "/apple/profile.mobileconfig", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("profile without login: %d, want 401", code)
	}
	code, body, _ = ts.davDo("anna@contoso.test", "anna-secret", "GET", "/apple/profile.mobileconfig", "", nil)
	var profile struct {
		PayloadType    string
		PayloadContent []map[string]any
	}
	if _, err := plist.Unmarshal(body, &profile); err != nil || code != http.StatusOK || profile.PayloadType != "Configuration" {
		t.Fatalf("profile: %d %v\n%s", code, err, body)
	}
	logins := map[string]bool{}
	for _, p := range profile.PayloadContent {
		if u, ok := p["IncomingMailServerUsername"].(string); ok {
			logins[u] = true
		}
		if u, ok := p["CardDAVUsername"].(string); ok {
			logins["carddav "+u] = true
		}
	}
	for _, want := range []string{"anna@contoso.test", "info@contoso.test*anna@contoso.test", "carddav anna@contoso.test"} {
		if !logins[want] {
			t.Errorf("profile lacks the account %q: %v", want, logins)
		}
	}
	code, body, _ = ts.davDo("", "", "GET", "/", "", nil)
	if code != http.StatusOK || !bytes.Contains(body, []byte("mail.contoso.test")) || !bytes.Contains(body, []byte("port "+strconv.Itoa(port(ts.imap)))) {
		t.Fatalf("page: %d\n%s", code, body)
	}
}

// A shared mailbox's contacts are its team's book: anna adds a card there
// through her view of info's book, and info's reply goes to that sender.
func TestSharedAutoReplyReadsTheTeamBook(t *testing.T) {
	t.Parallel()
	sk := newSink(t, "127.0.0.1")
	ts := startServer(t, davConfig+`
[shared.info.auto_reply]
enabled  = true
external = "The team is away"
external_audience = "contacts"

[outbound]
smarthost = "`+sk.addr+`"
smarthost_tls = "none"
`)
	card := "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Customer\r\nEMAIL:customer@fabrikam.example\r\nEND:VCARD\r\n"
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PUT", "/dav/anna/books/info@contoso.test/customer.vcf", "text/vcard", []byte(card)); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	msg := "From: customer@fabrikam.example\nTo: info@contoso.test\nSubject: order\n\nhi\n"
	if err := ts.send("customer@fabrikam.example", []string{"info@contoso.test"}, msg); err != nil {
		t.Fatal(err)
	}
	if reply := sk.wait(t, 1)[0]; reply.To[0] != "customer@fabrikam.example" || !strings.Contains(reply.Data, "The team is away") {
		t.Fatalf("reply to %v:\n%s", reply.To, reply.Data)
	}
}
