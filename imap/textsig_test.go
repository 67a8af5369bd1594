package imap

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// textCorpus: base64, quoted-printable with words split by soft line
// breaks, several charsets, multipart and attached messages, encoded
// words in the header, a first line that continues a field.
var textCorpus = []string{
	"From: a@example.org\r\nSubject: plain\r\n\r\nThe Zanzibar report is late.\r\n",
	"Subject: b64\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"R3LDvMOfZSBhdXMgWmFuemliYXIsIGRhcyBXZXR0ZXIgaXN0IHNjaMO2bi4=\r\n",
	"Subject: qp\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Der Bericht aus Zan=\r\nzibar ist f=FCr M=FCller, Gr=FC=DFe.\r\n",
	"Subject: koi8\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\r\n",
	"Subject: cp1252\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\nCaf\xe9 \x93quoted\x94 zanzibar\r\n",
	"Subject: =?utf-8?B?WmFuemliYXIgR3LDvMOfZQ==?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n" +
		"--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>second=\r\n part, =C3=BCber</p>\r\n--b--\r\n",
	"Subject: attached\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner zanzibar\r\nFrom: x@y\r\n\r\ninner body text\r\n",
	" continued: first line\r\nSubject: odd\r\n\r\nzanzibar\r\n",
	"Subject: no body",
	"garbage\r\n",
}

var textNeedles = []string{"zanzibar", "ZANZIBAR", "zan", "za", "", "grüße", "müller", "über", "привет", "café", "“quoted”", "second part",
	"inner body", "inner zanzibar", "subject: inner", "delivered-to", "contoso.test", "test\r\nsubject", "nowhere-at-all", "first part", "r\r\n", "=?utf-8"}

// TestTextSignatureNeverMisses: for every message, needle and criterion,
// when the message matches (read the slow way, the mailbox's prefix
// before it), its signature says it may; and the signatures pass over
// most messages for a needle they lack.
func TestTextSignatureNeverMisses(t *testing.T) {
	t.Parallel()
	narrowed := 0
	for _, body := range textCorpus {
		for _, needle := range textNeedles {
			for _, c := range []*goimap.SearchCriteria{{Text: []string{needle}}, {Body: []string{needle}}} {
				if checkTextSignature(t, []byte(body), c) {
					narrowed++
				}
			}
		}
	}
	if narrowed < len(textCorpus) {
		t.Errorf("the signatures passed over %d messages in all", narrowed)
	}
}

// checkTextSignature fails the test if the signature would miss a match,
// and reports whether it passes over the message.
func checkTextSignature(t *testing.T, body []byte, c *goimap.SearchCriteria) bool {
	t.Helper()
	prefix := []byte("Delivered-To: info@contoso.test\r\n")
	slow := matchText(c, &searchMessage{body: append(prefix[:len(prefix):len(prefix)], body...)})
	may := mayMatchText(c, readSignature(searchPart(&store.MessageInfo{SearchData: SearchData(body)})), prefix)
	if slow && !may {
		t.Errorf("TEXT %q BODY %q on %q: the signature passes over a match", c.Text, c.Body, body)
	}
	return !may
}

// FuzzTextSignature: the signature never passes over a message that
// matches, whatever the message and needle.
func FuzzTextSignature(f *testing.F) {
	for i, body := range textCorpus {
		f.Add([]byte(body), textNeedles[i%len(textNeedles)], i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, body []byte, needle string, text bool) {
		c := &goimap.SearchCriteria{Body: []string{needle}}
		if text {
			c = &goimap.SearchCriteria{Text: []string{needle}}
		}
		checkTextSignature(t, body, c)
	})
}

// TestSearchTextNarrowedOverIMAP: SEARCH TEXT and BODY, narrowed by the
// signatures, find what the same search without narrowing finds (NOT NOT
// keeps the meaning and turns the narrowing off).
func TestSearchTextNarrowedOverIMAP(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, body := range textCorpus {
		ts.deliver(t, "anna", strings.ReplaceAll(body, "\r\n", "\n"))
	}
	anna := ts.login(t, "anna")
	if _, err := anna.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	search := func(c *goimap.SearchCriteria) []goimap.UID {
		t.Helper()
		data, err := anna.UIDSearch(c, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return data.AllUIDs()
	}
	for _, needle := range []string{"zanzibar", "grüße", "über", "second part", "inner body", "contoso", "nowhere-at-all"} {
		for _, c := range []goimap.SearchCriteria{{Text: []string{needle}}, {Body: []string{needle}},
			{Or: [][2]goimap.SearchCriteria{{{Body: []string{needle}}, {Text: []string{"first part"}}}}}} {
			slow := &goimap.SearchCriteria{Not: []goimap.SearchCriteria{{Not: []goimap.SearchCriteria{c}}}}
			if f, s := search(&c), search(slow); !equalUIDs(f, s) {
				t.Errorf("%+v: %v narrowed, %v read in full", c, f, s)
			}
		}
	}
}

// TestOldCachesSearchedAndRefreshed: messages stored before the search
// data was kept per body, with a version 1 cache (no search block or text
// signature) or a version 2 one (both, in every copy), are found by SEARCH
// while they wait (read in full, or from the old cache), and the server
// gives them the current cache and their bodies search data in the
// background; the answers stay the same.
func TestOldCachesSearchedAndRefreshed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	version2 := func(body []byte) []byte {
		return append(append([]byte{cacheVersionSearch}, SearchData(body)[1:]...), Analyze(body)[1:]...)
	}
	corpus := append(slices.Clone(textCorpus), searchCorpus...)
	for i, analyze := range []func([]byte) []byte{Analyze, version2} {
		// Version 1 is today's cache without search data.
		st, err := store.Open(ctx, store.Options{Path: path, Analyze: analyze})
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range corpus[i*len(corpus)/2 : (i+1)*len(corpus)/2] {
			d := &store.Delivery{Body: []byte(body), Targets: []store.Target{{Account: "anna", Folder: "INBOX", Prefix: []byte("Delivered-To: anna@contoso.test\r\n")}}}
			if _, err := st.Deliver(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
	}

	st, err := store.Open(ctx, store.Options{Path: path, Analyze: Analyze, SearchData: SearchData})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(Options{Store: st, Directory: newFakeDirectory(), InsecureAuth: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ts := &testServer{addr: ln.Addr().String(), store: st, srv: srv}
	anna := ts.login(t, "anna")
	if _, err := anna.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	criteria := []goimap.SearchCriteria{
		{Text: []string{"zanzibar"}}, {Body: []string{"grüße"}}, {Text: []string{"contoso"}},
		{Header: []goimap.SearchCriteriaHeaderField{{Key: "Subject", Value: "invoice"}}},
		{Header: []goimap.SearchCriteriaHeaderField{{Key: "From", Value: "anna berg"}}},
	}
	answers := func() [][]goimap.UID {
		var out [][]goimap.UID
		for _, c := range criteria {
			data, err := anna.UIDSearch(&c, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, data.AllUIDs())
		}
		return out
	}
	before := answers()
	<-srv.refreshed
	stale, seen := 0, 0
	var uids []store.UID
	for uid := range store.UID(len(corpus)) {
		uids = append(uids, uid+1)
	}
	err = st.MessagesInPlace(ctx, store.Access{Account: "anna", Viewer: "anna"}, 1, uids, func(m *store.MessageInfo) error {
		seen++
		if m.Meta[0] != cacheVersion || len(m.SearchData) == 0 || m.SearchData[0] != searchDataVersion {
			stale++
		}
		return nil
	})
	if err != nil || stale != 0 || seen != len(corpus) {
		t.Fatalf("%d of %d messages keep the old cache or lack search data, %v", stale, seen, err)
	}
	if n, _, err := st.SearchDataStats(); err != nil || n != len(corpus) {
		t.Fatalf("%d bodies have search data, want %d (%v)", n, len(corpus), err)
	}
	after := answers()
	for i := range criteria {
		if !equalUIDs(before[i], after[i]) || len(after[i]) == 0 {
			t.Errorf("%+v: %v before the refresh, %v after", criteria[i], before[i], after[i])
		}
	}
}
