package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-webdav/carddav"

	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

const foldedCard = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nFN:Paul\r\nNOTE:folded \r\n line\r\nEND:VCARD\r\n"

type noAuth struct{}

func (noAuth) Authenticate(string, string) (string, error) { return "", ErrAuthFailed }

// testWeb is a Server over a real store, with anna as its one user.
func testWeb(t *testing.T) (*Server, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "mail.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir, err := policy.NewDirectory(policy.DirectoryOptions{
		Domains:   []string{"contoso.test"},
		Mailboxes: []policy.Mailbox{{ID: "anna", Kind: policy.KindUser, Address: "anna@contoso.test", DAV: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Hostname: "mail.contoso.test", Directory: func() *policy.Directory { return dir }, Auth: noAuth{}, Cards: st})
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// TestGoWebdavServer pins the two faults of go-webdav v0.6.0's carddav
// server that serveDAV works around by serving cards and REPORTs itself:
// it answers sync-collection with 400, and it sends a card re-encoded
// rather than as stored. When either test fails, the library has changed:
// see whether the workaround can go.
func TestGoWebdavServer(t *testing.T) {
	t.Parallel()
	s, st := testWeb(t)
	if _, _, err := st.PutCard(context.Background(), store.Book{Account: "anna", Name: contactsBook}, "p.vcf", []byte(foldedCard), "", time.Now()); err != nil {
		t.Fatal(err)
	}
	lib := &carddav.Handler{Backend: davBackend{s}, Prefix: davPrefix}
	do := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/xml")
		r = r.WithContext(context.WithValue(r.Context(), userKey, "anna"))
		w := httptest.NewRecorder()
		lib.ServeHTTP(w, r)
		return w
	}
	sync := `<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`
	if w := do("REPORT", "/dav/anna/books/contacts/", sync); w.Code != http.StatusBadRequest {
		t.Errorf("go-webdav answered sync-collection with %d (was 400): it may support it now", w.Code)
	}
	if w := do("GET", "/dav/anna/books/contacts/p.vcf", ""); w.Code != http.StatusOK || w.Body.String() == foldedCard {
		t.Errorf("go-webdav's GET: %d, body as stored: %v (was re-encoded)", w.Code, w.Body.String() == foldedCard)
	}
	// Ours keeps it.
	r := httptest.NewRequest("GET", "/dav/anna/books/contacts/p.vcf", nil)
	r = r.WithContext(context.WithValue(r.Context(), userKey, "anna"))
	w := httptest.NewRecorder()
	s.serveDAV(w, r)
	if w.Body.String() != foldedCard {
		t.Errorf("our GET:\n%q", w.Body.String())
	}
}

func TestParseDAVPath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want davPath
		ok   bool
	}{
		{"/dav", davPath{}, true},
		{"/dav/", davPath{}, true},
		{"/dav/anna/", davPath{user: "anna", depth: 1}, true},
		{"/dav/anna/books/", davPath{user: "anna", depth: 2}, true},
		{"/dav/anna/books/info@contoso.test/", davPath{user: "anna", book: "info@contoso.test", depth: 3}, true},
		{"/dav/anna/books/contacts/a.vcf", davPath{user: "anna", book: "contacts", card: "a.vcf", depth: 4}, true},
		{"/dav/anna/other/contacts/", davPath{}, false},
		{"/dav/anna/books/contacts/a.vcf/x", davPath{}, false},
		{"/dav/anna/books/../bo/", davPath{}, false},
		{"/davx", davPath{}, false},
	} {
		got, ok := parseDAVPath(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseDAVPath(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzCheckCard(f *testing.F) {
	f.Add([]byte(foldedCard))
	f.Add([]byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\nBEGIN:VCARD\r\n"))
	f.Add([]byte("BEGIN:VCARD\nVERSION:3.0\nFN;X=\"a:b\":y\nEND:VCARD\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkCard(data) == nil && len(cardEmails(data)) > len(data) {
			t.Fatal("more addresses than bytes")
		}
	})
}

func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><C:address-data version="4.0"/></D:prop><C:filter test="allof"><C:prop-filter name="EMAIL"><C:text-match match-type="equals" negate-condition="yes">a</C:text-match><C:param-filter name="TYPE"><C:is-not-defined/></C:param-filter></C:prop-filter></C:filter><C:limit><C:nresults>2</C:nresults></C:limit></C:addressbook-query>`))
	f.Add([]byte(`<D:sync-collection xmlns:D="DAV:"><D:sync-token>http://postkasse.dev/ns/sync/3</D:sync-token></D:sync-collection>`))
	f.Add([]byte(`<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:href>/dav/a/books/contacts/x.vcf</D:href></C:addressbook-multiget>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseReport(data)
		if err != nil {
			return
		}
		req.version()
		if req.Filter != nil {
			req.Filter.query()
		}
	})
}

func FuzzParseDAVPath(f *testing.F) {
	f.Add("/dav/anna/books/contacts/a.vcf")
	f.Add("/dav//anna//books/x/")
	f.Fuzz(func(t *testing.T, p string) {
		d, ok := parseDAVPath(p)
		if ok && (d.depth > 4 || d.depth < 0 || strings.Contains(d.user+d.book+d.card, "/")) {
			t.Fatalf("%q: %+v", p, d)
		}
	})
}

// Both ways a client starts, /.well-known/carddav and a PROPFIND of /,
// lead to the DAV root without a login.
func TestDiscoveryRedirects(t *testing.T) {
	t.Parallel()
	s, _ := testWeb(t)
	for _, tt := range []struct{ method, path string }{{"GET", "/.well-known/carddav"}, {"PROPFIND", "/.well-known/carddav"}, {"PROPFIND", "/"}} {
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/dav/" {
			t.Errorf("%s %s: %d to %q", tt.method, tt.path, w.Code, w.Header().Get("Location"))
		}
	}
}
