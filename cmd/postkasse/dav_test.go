package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/carddav"

	"postkasse.dev/postkasse/internal/testcert"
	"postkasse.dev/postkasse/store"
)

// davConfig adds a shared mailbox with a member (anna), a reader (carl)
// and a non-member (bo), and a group with every kind of member.
const davConfig = `
[shared.info]
address = "info@contoso.test"
name    = "Contoso Info"
aliases = ["kontakt@contoso.test"]
members = ["anna@contoso.test"]

[shared.info.grants]
"carl@contoso.test" = ["read"]

[group.sales]
address = "sales@contoso.test"
name    = "Sales"
members = ["anna@contoso.test", "info@contoso.test", "partner@fabrikam.example"]
`

// A card as a client might write it: folded line, odd order, no trailing
// newline normalisation. It must come back exactly like this.
const annaCard = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-1\r\nN:Partner;Paul;;;\r\nFN:Paul Partner\r\n" +
	"EMAIL;TYPE=work:paul@partner.example\r\nNOTE:a long note that a client folded at seventy-five \r\n characters, as RFC 6350 allows\r\nEND:VCARD\r\n"

// davClient logs in to the test server's CardDAV as user.
func (ts *testServer) davClient(user, pass string) *carddav.Client {
	ts.t.Helper()
	c, err := carddav.NewClient(webdav.HTTPClientWithBasicAuth(http.DefaultClient, user, pass), "http://"+ts.http+"/dav/")
	if err != nil {
		ts.t.Fatal(err)
	}
	return c
}

// davDo sends one raw request as user and returns the status and body.
func (ts *testServer) davDo(user, pass, method, path, contentType string, body []byte, header ...string) (int, []byte, http.Header) {
	ts.t.Helper()
	req, err := http.NewRequest(method, "http://"+ts.http+path, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, data, resp.Header
}

// discoverBooks finds user's books as a client does: /.well-known/carddav,
// the principal, the home set, the books.
func (ts *testServer) discoverBooks(user, pass string) map[string]carddav.AddressBook {
	ts.t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + ts.http + "/.well-known/carddav")
	if err != nil {
		ts.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/dav/" {
		ts.t.Fatalf("/.well-known/carddav: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := ts.davClient(user, pass)
	ctx := context.Background()
	principal, err := c.FindCurrentUserPrincipal(ctx)
	if err != nil {
		ts.t.Fatalf("principal: %v", err)
	}
	home, err := c.FindAddressBookHomeSet(ctx, principal)
	if err != nil {
		ts.t.Fatalf("home set: %v", err)
	}
	books, err := c.FindAddressBooks(ctx, home)
	if err != nil {
		ts.t.Fatalf("books: %v", err)
	}
	out := make(map[string]carddav.AddressBook)
	for _, b := range books {
		out[strings.TrimSuffix(strings.TrimPrefix(b.Path, home), "/")] = b
	}
	return out
}

func TestCardDAVBooksKeepCardsAndSync(t *testing.T) {
	t.Parallel()
	ts := startServer(t, davConfig)
	ctx := context.Background()
	books := ts.discoverBooks("anna@contoso.test", "anna-secret")
	for _, want := range []string{"contacts", "directory", "info@contoso.test"} {
		if _, ok := books[want]; !ok {
			t.Fatalf("anna's books %v lack %q", keys(books), want)
		}
	}
	contacts := books["contacts"].Path
	c := ts.davClient("anna@contoso.test", "anna-secret")
	first, err := c.SyncCollection(ctx, contacts, &carddav.SyncQuery{})
	if err != nil || len(first.Updated) != 0 {
		t.Fatalf("first sync: %+v %v", first, err)
	}
	code, _, h := ts.davDo("anna@contoso.test", "anna-secret", "PUT", contacts+"paul.vcf", "text/vcard", []byte(annaCard))
	if code != http.StatusCreated || h.Get("ETag") == "" {
		t.Fatalf("PUT: %d, ETag %q", code, h.Get("ETag"))
	}
	etag := h.Get("ETag")
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PUT", contacts+"paul.vcf", "text/vcard", []byte(annaCard)); code != http.StatusNoContent {
		t.Fatalf("second PUT: %d, want 204", code)
	}
	ts.checkCard(contacts+"paul.vcf", annaCard, etag)

	// multiget and query find it; the sync reports it with the same ETag.
	got, err := c.MultiGetAddressBook(ctx, contacts, &carddav.AddressBookMultiGet{Paths: []string{contacts + "paul.vcf"}, DataRequest: carddav.AddressDataRequest{AllProp: true}})
	if err != nil || len(got) != 1 || got[0].Card.PreferredValue("FN") != "Paul Partner" {
		t.Fatalf("multiget: %+v %v", got, err)
	}
	found, err := c.QueryAddressBook(ctx, contacts, &carddav.AddressBookQuery{
		DataRequest: carddav.AddressDataRequest{AllProp: true},
		PropFilters: []carddav.PropFilter{{Name: "EMAIL", TextMatches: []carddav.TextMatch{{Text: "partner.example"}}}},
	})
	if err != nil || len(found) != 1 {
		t.Fatalf("query: %+v %v", found, err)
	}
	second, err := c.SyncCollection(ctx, contacts, &carddav.SyncQuery{SyncToken: first.SyncToken})
	if err != nil || len(second.Updated) != 1 || `"`+second.Updated[0].ETag+`"` != etag {
		t.Fatalf("second sync: %+v %v", second, err)
	}
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "DELETE", contacts+"paul.vcf", "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	third, err := c.SyncCollection(ctx, contacts, &carddav.SyncQuery{SyncToken: second.SyncToken})
	if err != nil || len(third.Deleted) != 1 || third.Deleted[0] != contacts+"paul.vcf" {
		t.Fatalf("third sync: %+v %v", third, err)
	}
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "REPORT", contacts, "application/xml",
		[]byte(`<D:sync-collection xmlns:D="DAV:"><D:sync-token>http://postkasse.dev/ns/sync/999</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`)); code != http.StatusForbidden {
		t.Fatalf("sync from a token never given: %d, want 403", code)
	}

	// A card in the shared book survives a restart, byte for byte.
	shared := books["info@contoso.test"].Path
	code, _, h = ts.davDo("anna@contoso.test", "anna-secret", "PUT", shared+"paul.vcf", "text/vcard", []byte(annaCard))
	if code != http.StatusCreated {
		t.Fatalf("PUT into the shared book: %d", code)
	}
	ts.restart()
	ts.checkCard(shared+"paul.vcf", annaCard, h.Get("ETag"))
}

// checkCard GETs a card as anna and compares it byte for byte.
func (ts *testServer) checkCard(path, want, etag string) {
	ts.t.Helper()
	code, body, h := ts.davDo("anna@contoso.test", "anna-secret", "GET", path, "", nil)
	if code != http.StatusOK || string(body) != want || h.Get("ETag") != etag {
		ts.t.Fatalf("GET %s: %d, ETag %q (want %q), body:\n%q\nwant:\n%q", path, code, h.Get("ETag"), etag, body, want)
	}
}

func TestCardDAVRefusesBadCards(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	path := "/dav/anna/books/contacts/"
	for _, tt := range []struct {
		name string
		body []byte
		want int
	}{
		{"not a vCard", []byte("hello\r\n"), http.StatusBadRequest},
		{"no END", []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\n"), http.StatusBadRequest},
		{"version 2.1", []byte("BEGIN:VCARD\r\nVERSION:2.1\r\nFN:x\r\nEND:VCARD\r\n"), http.StatusBadRequest},
		{"two cards", []byte(annaCard + annaCard), http.StatusBadRequest},
		{"too large", []byte(strings.Replace(annaCard, "NOTE:", "NOTE:"+strings.Repeat("x", 2<<20), 1)), http.StatusRequestEntityTooLarge},
	} {
		code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PUT", path+"bad.vcf", "text/vcard", tt.body)
		if code != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.want)
		}
	}
	cards, err := ts.srv.store.Cards(context.Background(), storeBook("anna", "contacts"))
	if err != nil || len(cards) != 0 {
		t.Fatalf("stored after refusals: %d cards, %v", len(cards), err)
	}
	if code, _, _ := ts.davDo("anna@contoso.test", "wrong", "PROPFIND", "/dav/", "", nil); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "GET", "/dav/bo/books/contacts/x.vcf", "", nil); code != http.StatusNotFound {
		t.Errorf("anna reading bo's book: %d, want 404", code)
	}
}

func TestCardDAVSharedBookRights(t *testing.T) {
	t.Parallel()
	ts := startServer(t, davConfig)
	carl := ts.discoverBooks("carl@contoso.test", "carl-secret")
	shared, ok := carl["info@contoso.test"]
	if !ok {
		t.Fatalf("the read grantee does not see info's book: %v", keys(carl))
	}
	if code, _, _ := ts.davDo("carl@contoso.test", "carl-secret", "PUT", shared.Path+"x.vcf", "text/vcard", []byte(annaCard)); code != http.StatusForbidden {
		t.Fatalf("read grantee's PUT: %d, want 403", code)
	}
	if code, _, _ := ts.davDo("carl@contoso.test", "carl-secret", "PUT", "/dav/carl/books/directory/x.vcf", "text/vcard", []byte(annaCard)); code != http.StatusForbidden {
		t.Fatalf("PUT into the directory: %d, want 403", code)
	}
	bo := ts.discoverBooks("bo@contoso.test", "bo-secret")
	if _, ok := bo["info@contoso.test"]; ok || len(bo) != 2 {
		t.Fatalf("bo, no member, sees %v", keys(bo))
	}
	if code, _, _ := ts.davDo("bo@contoso.test", "bo-secret", "PROPFIND", "/dav/bo/books/info@contoso.test/", "", nil, "Depth", "1"); code != http.StatusNotFound {
		t.Fatalf("bo's PROPFIND of info's book: %d, want 404", code)
	}
}

func TestCardDAVNeedsTheApp(t *testing.T) {
	t.Parallel()
	ts := startServer(t, `
[user.dave]
address  = "dave@contoso.test"
password = "`+annaHash+`"
apps     = ["imap", "smtp"]
`)
	if code, _, _ := ts.davDo("dave@contoso.test", "anna-secret", "PROPFIND", "/dav/", "", nil); code != http.StatusForbidden {
		t.Fatalf("a user without \"dav\": %d, want 403", code)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func storeBook(account, name string) store.Book { return store.Book{Account: account, Name: name} }

// With allow_insecure_auth off, the plain HTTP listener takes no logins
// (setup files still need none); HTTPS does, with the configured
// certificate, and its setup files name the TLS ports.
func TestHTTPSAndPlaintextLogins(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t, "mail.contoso.test", "127.0.0.1")
	certPath, keyPath := cert.WriteFiles(t, t.TempDir())
	ts := startServer(t, fmt.Sprintf("[tls]\ncert = %q\nkey = %q\nallow_insecure_auth = false\n", certPath, keyPath))
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PROPFIND", "/dav/", "", nil); code != http.StatusForbidden {
		t.Fatalf("login over plain HTTP: %d, want 403", code)
	}
	if code, body, _ := ts.davDo("", "", "GET", "/mail/config-v1.1.xml", "", nil); code != http.StatusOK || !bytes.Contains(body, []byte("<socketType>SSL</socketType>")) {
		t.Fatalf("autoconfig over plain HTTP: %d\n%s", code, body)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cert.Client}}
	c, err := carddav.NewClient(webdav.HTTPClientWithBasicAuth(client, "anna@contoso.test", "anna-secret"), "https://"+ts.https+"/dav/")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.FindCurrentUserPrincipal(context.Background()); err != nil || p != "/dav/anna/" {
		t.Fatalf("principal over HTTPS: %q %v", p, err)
	}
}

// bookProps PROPFINDs a book (Depth 0) for the properties go-webdav does
// not give and the server adds: the sync token, the ctag and the
// privileges.
func (ts *testServer) bookProps(user, pass, path string) (token, ctag string, privileges []string) {
	ts.t.Helper()
	code, body, _ := ts.davDo(user, pass, "PROPFIND", path, "application/xml",
		[]byte(`<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><D:displayname/><D:sync-token/><CS:getctag/><D:current-user-privilege-set/></D:prop></D:propfind>`),
		"Depth", "0")
	var ms struct {
		Propstats []struct {
			Token      string `xml:"prop>sync-token"`
			CTag       string `xml:"prop>getctag"`
			Privileges []struct {
				Inner []struct {
					XMLName xml.Name
				} `xml:",any"`
			} `xml:"prop>current-user-privilege-set>privilege"`
			Status string `xml:"status"`
		} `xml:"response>propstat"`
	}
	if code != http.StatusMultiStatus || xml.Unmarshal(body, &ms) != nil {
		ts.t.Fatalf("PROPFIND %s: %d\n%s", path, code, body)
	}
	for _, ps := range ms.Propstats {
		if !strings.Contains(ps.Status, "200") {
			continue
		}
		token, ctag = ps.Token, ps.CTag
		for _, p := range ps.Privileges {
			for _, in := range p.Inner {
				privileges = append(privileges, in.XMLName.Local)
			}
		}
	}
	return token, ctag, privileges
}

func TestBookPropertiesForSyncingClients(t *testing.T) {
	t.Parallel()
	ts := startServer(t, davConfig)
	book := "/dav/anna/books/contacts/"
	before, ctag, privs := ts.bookProps("anna@contoso.test", "anna-secret", book)
	if before == "" || ctag != before || !slices.Contains(privs, "write") {
		t.Fatalf("anna's contacts: token %q ctag %q privileges %v", before, ctag, privs)
	}
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PUT", book+"paul.vcf", "text/vcard", []byte(annaCard)); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	after, _, _ := ts.bookProps("anna@contoso.test", "anna-secret", book)
	sync, err := ts.davClient("anna@contoso.test", "anna-secret").SyncCollection(context.Background(), book, &carddav.SyncQuery{SyncToken: before})
	if err != nil || after == before || sync.SyncToken != after || len(sync.Updated) != 1 {
		t.Fatalf("token before %q, after %q; sync from before: %+v %v", before, after, sync, err)
	}
	if _, _, privs := ts.bookProps("carl@contoso.test", "carl-secret", "/dav/carl/books/info@contoso.test/"); !slices.Contains(privs, "read") || slices.Contains(privs, "write") {
		t.Fatalf("the read grantee's privileges on info's book: %v", privs)
	}
}
