package imap

import (
	"slices"
	"testing"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// searchCorpus holds header edge cases: encoded words in several
// charsets, repeated and folded fields, groups, empty and missing fields,
// raw 8-bit text, a continuation line first, no header at all.
var searchCorpus = []string{
	"From: Anna Berg <anna@example.org>\r\nTo: bo@example.org, \"Carl C.\" <carl@example.net>\r\nSubject: Invoice 42\r\n\r\nbody\r\n",
	"From: =?iso-8859-1?Q?J=F6rg_M=FCller?= <jm@example.de>\r\nSubject: =?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nCc: team: a@x.org, b@y.org;\r\n\r\nx\r\n",
	"Subject: first\r\nSubject: second INVOICE\r\nTo: undisclosed-recipients:;\r\n\r\nx\r\n",
	"Subject: folded\r\n line Invoice\r\nFrom: <bare@example.com>\r\n\r\nx\r\n",
	"Subject:\r\nTo: \r\nReply-To: Help Desk <help@example.com>\r\nSender: robot@example.com\r\n\r\nx\r\n",
	"From: M\xfcller <m@example.de>\r\nSubject: Gr\xfc\xdfe =?koi8-r?B?8NLJ18XU?=\r\nMessage-ID: <abc.123@example.org>\r\nIn-Reply-To: <prev@example.org>\r\nDate: Mon, 1 Dec 2025 10:00:00 +0100\r\n\r\nx\r\n",
	"Bcc: secret@example.org\r\nSubject: =?utf-8?q?broken=ZZ?=\r\n\r\nx\r\n",
	" continued: first\r\nSubject: odd\r\n\r\nx\r\n",
	"no header at all, just text\r\n",
	"",
	"Subject: =?UTF-8?B?SW52b2ljZQ==?= and INVOICE\r\nFrom: \"Invoice Dept\" <billing@example.org>\r\n\r\nx\r\n",
	"X-Department: Billing\r\nx-department: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nX-Empty:\r\nReceived: from a\r\n\tby b; Mon, 1 Dec 2025\r\nDelivered-To: anna@example.org\r\nX_Odd: invoice\r\n\r\nx\r\n",
}

// searchFields are the fields the tests search: the cached ones and others.
var searchFields = append(slices.Clone(cachedFields), "X-Department", "x-empty", "received", "delivered-to", "X_Odd", "content-type", "x-missing")

var searchNeedles = []string{"", "invoice", "INVOICE", "anna", "anna berg <anna@", "<carl@example.net>", "jörg", "=?iso", "grüße", "team", "bo@example.org",
	"second", "line invoice", "help desk", "robot", "müller", "привет", "abc.123", "prev@", "2025", "broken", "odd", "first", "x", "billing@example.org>", "\x00", "billing", "by b; mon", "from a by b"}

// TestSearchBlockMatchesMessage: a HEADER criterion on a cached field gives
// the same answer from the search block as from the stored message (the
// mailbox's own header lines before the body), for every corpus message,
// field and needle.
func TestSearchBlockMatchesMessage(t *testing.T) {
	t.Parallel()
	for _, body := range searchCorpus {
		for _, field := range searchFields {
			for _, needle := range searchNeedles {
				checkSearchBlock(t, []byte(body), field, needle)
			}
		}
	}
}

func checkSearchBlock(t *testing.T, body []byte, field, needle string) {
	t.Helper()
	c := &goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: field, Value: needle}}}
	stored := append([]byte("Delivered-To: info@contoso.test\r\n"), body...)
	slow := matchText(c, &searchMessage{body: stored})
	var ch cachedHeader
	if !cacheable(c) || !readSearchBlock(searchPart(&store.MessageInfo{SearchData: SearchData(body)}), &ch) {
		return // the search reads the message itself
	}
	if fast := matchText(c, &searchMessage{cached: &ch}); fast != slow {
		t.Errorf("HEADER %s %q on %q: search block says %v, the message %v", field, needle, body, fast, slow)
	}
}

// FuzzSearchBlock: for any message and needle, the search block and the
// message agree.
func FuzzSearchBlock(f *testing.F) {
	for i, body := range searchCorpus {
		f.Add([]byte(body), searchFields[i%len(searchFields)], searchNeedles[i%len(searchNeedles)])
	}
	f.Fuzz(func(t *testing.T, body []byte, field, needle string) {
		checkSearchBlock(t, body, field, needle)
	})
}

// TestSearchCachedFieldsOverIMAP: SEARCH on envelope fields, answered from
// the search blocks, finds what the same search answered from the messages
// finds (an empty TEXT criterion makes the server read every message).
func TestSearchCachedFieldsOverIMAP(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, body := range searchCorpus {
		ts.deliver(t, "anna", body)
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
	for _, field := range []string{"Subject", "From", "To", "Cc", "Bcc", "Message-ID", "Reply-To", "X-Department", "Received", "X-Missing"} {
		for _, needle := range []string{"invoice", "example.org", "", "anna berg", "grüße", "team", "billing", "by b"} {
			fast := &goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: field, Value: needle}}}
			slow := &goimap.SearchCriteria{Header: fast.Header, Text: []string{""}}
			if f, s := search(fast), search(slow); !equalUIDs(f, s) {
				t.Errorf("HEADER %s %q: %v from the search blocks, %v from the messages", field, needle, f, s)
			}
		}
	}
}

// TestCacheVersion1: a cache written before the search block still
// decodes, and has no block, so SEARCH reads that message itself.
func TestCacheVersion1(t *testing.T) {
	t.Parallel()
	env, bs := parseMessage([]byte(searchCorpus[0]))
	var e encoder
	e.byte(1)
	e.envelope(env)
	e.structure(bs)
	got, _, err := decodeCache(e.b)
	if err != nil || got.Subject != "Invoice 42" {
		t.Fatalf("version 1 cache: %v %v", got, err)
	}
	if readSearchBlock(e.b, &cachedHeader{}) {
		t.Fatal("version 1 cache has a search block")
	}
}

func equalUIDs(a, b []goimap.UID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSeqFinder: sequence numbers of UIDs asked in order, out of order,
// twice, and of UIDs not in the folder.
func TestSeqFinder(t *testing.T) {
	refs := []msgRef{{seq: 1, uid: 3}, {seq: 2, uid: 7}, {seq: 3, uid: 8}, {seq: 4, uid: 20}}
	f := seqFinder{refs: refs}
	for _, c := range []struct {
		uid store.UID
		seq uint32
	}{{3, 1}, {7, 2}, {8, 3}, {20, 4}, {7, 2}, {7, 2}, {1, 0}, {9, 0}, {21, 0}, {8, 3}, {20, 4}, {3, 1}} {
		if got := f.seq(c.uid); got != c.seq {
			t.Errorf("UID %d: sequence number %d, want %d", c.uid, got, c.seq)
		}
	}
}
