package imap

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const multipartMessage = `From: Carl Client <carl@example.org>
To: anna@contoso.test
Subject: Quarterly report
Date: Mon, 02 Nov 2026 10:00:00 +0100
Message-ID: <report-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8

Numbers are up. Searchable needle here.
--XX
Content-Type: message/rfc822

From: inner@example.org
Subject: Inner

inner body
--XX--
`

func TestFetchEnvelopeStructureSectionsAndSeen(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", multipartMessage)
	c := ts.login(t, "anna")
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("select: %+v %v", sel, err)
	}
	msgs, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{
		Envelope: true, BodyStructure: &goimap.FetchItemBodyStructure{Extended: true},
		Flags: true, RFC822Size: true, InternalDate: true, UID: true,
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v", err)
	}
	m := msgs[0]
	if m.Envelope.Subject != "Quarterly report" || m.Envelope.MessageID != "report-1@example.org" ||
		len(m.Envelope.From) != 1 || m.Envelope.From[0].Addr() != "carl@example.org" {
		t.Fatalf("envelope %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*goimap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "mixed" || len(mp.Children) != 2 {
		t.Fatalf("bodystructure %#v", m.BodyStructure)
	}
	if inner, ok := mp.Children[1].(*goimap.BodyStructureSinglePart); !ok || inner.MessageRFC822 == nil || inner.MessageRFC822.Envelope.Subject != "Inner" {
		t.Fatalf("attached message %#v", mp.Children[1])
	}
	if slices.Contains(m.Flags, goimap.FlagSeen) || m.RFC822Size == 0 || m.UID != 1 {
		t.Fatalf("flags %v size %d uid %d", m.Flags, m.RFC822Size, m.UID)
	}

	// BODY[2.1] is the body... of the attached message's first part; BODY[1] the text.
	text := &goimap.FetchItemBodySection{Part: []int{1}}
	innerText := &goimap.FetchItemBodySection{Part: []int{2}, Specifier: goimap.PartSpecifierText, Peek: true}
	partial := &goimap.FetchItemBodySection{Peek: true, Partial: &goimap.SectionPartial{Offset: 0, Size: 4}}
	msgs, err = c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{text, innerText, partial}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(msgs[0].FindBodySection(text)); !strings.Contains(got, "Numbers are up") {
		t.Fatalf("BODY[1] = %q", got)
	}
	if got := string(msgs[0].FindBodySection(innerText)); !strings.Contains(got, "inner body") {
		t.Fatalf("BODY[2.TEXT] = %q", got)
	}
	if got := string(msgs[0].FindBodySection(partial)); got != "From" {
		t.Fatalf("BODY[]<0.4> = %q", got)
	}
	// The non-peek fetch set \Seen.
	msgs, _ = c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{Flags: true}).Collect()
	if !slices.Contains(msgs[0].Flags, goimap.FlagSeen) {
		t.Fatalf("no implicit \\Seen: %v", msgs[0].Flags)
	}

	for _, tc := range []struct {
		name     string
		criteria goimap.SearchCriteria
		want     []uint32
	}{
		{"body", goimap.SearchCriteria{Body: []string{"NEEDLE"}}, []uint32{1}},
		{"header", goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "Subject", Value: "quarterly"}}}, []uint32{1}},
		{"missing", goimap.SearchCriteria{Text: []string{"absent-word"}}, nil},
		{"seen", goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagSeen}}, []uint32{1}},
		{"unseen", goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagSeen}}, nil},
		{"larger", goimap.SearchCriteria{Larger: 100000}, nil},
		{"since", goimap.SearchCriteria{Since: time.Now().Add(-48 * time.Hour)}, []uint32{1}},
		{"sentbefore", goimap.SearchCriteria{SentBefore: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, nil},
	} {
		data, err := c.Search(&tc.criteria, nil).Wait()
		if err != nil {
			t.Fatalf("search %s: %v", tc.name, err)
		}
		if got := data.AllSeqNums(); !slices.Equal(got, tc.want) {
			t.Errorf("search %s = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIdleSeesOtherSessionsChanges(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "Subject: one\n\nfirst\n")
	updates := make(chan string, 16)
	handler := &imapclient.UnilateralDataHandler{
		Mailbox: func(data *imapclient.UnilateralDataMailbox) {
			if data.NumMessages != nil {
				updates <- "exists"
			}
		},
		Expunge: func(seq uint32) { updates <- "expunge" },
		Fetch: func(msg *imapclient.FetchMessageData) {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if f, ok := item.(imapclient.FetchItemDataFlags); ok && slices.Contains(f.Flags, goimap.FlagFlagged) {
					updates <- "flagged"
				}
			}
		},
	}
	watcher := ts.dial(t, "anna@contoso.test", "anna-pw", handler)
	if _, err := watcher.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := watcher.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	actor := ts.login(t, "anna")
	if _, err := actor.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-updates:
			if got != want {
				t.Fatalf("update %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q update in IDLE", want)
		}
	}
	msg := "Subject: two\r\n\r\nsecond\r\n"
	app := actor.Append("INBOX", int64(len(msg)), nil)
	app.Write([]byte(msg))
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	expect("exists")
	// A delivery (not a session) reaches IDLE too.
	ts.deliver(t, "anna", "Subject: three\n\nthird\n")
	expect("exists")
	if err := actor.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagFlagged, goimap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	expect("flagged")
	if err := actor.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	expect("expunge")
}

func TestSharedNamespaceAndRights(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.dir.grant("carl", "info", true, false)
	ts.deliver(t, "info", "Subject: to the team\n\nhello team\n")

	anna := ts.login(t, "anna")
	ns, err := anna.Namespace().Wait()
	if err != nil || len(ns.Other) != 1 || ns.Other[0].Prefix != "Shared/" {
		t.Fatalf("namespace %+v %v", ns, err)
	}
	list, err := anna.List("", "*", &goimap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string][]goimap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
	}
	for _, name := range []string{"INBOX", "Sent", "Shared", "Shared/info@contoso.test", "Shared/info@contoso.test/INBOX", "Shared/info@contoso.test/Sent"} {
		if _, ok := attrs[name]; !ok {
			t.Fatalf("LIST lacks %q: %v", name, attrs)
		}
	}
	if !slices.Contains(attrs["Shared"], goimap.MailboxAttrNoSelect) || !slices.Contains(attrs["Shared/info@contoso.test"], goimap.MailboxAttrHasChildren) {
		t.Fatalf("parent attrs %v %v", attrs["Shared"], attrs["Shared/info@contoso.test"])
	}
	if !slices.Contains(attrs["Shared/info@contoso.test/Sent"], goimap.MailboxAttrSent) {
		t.Fatalf("shared Sent attrs %v", attrs["Shared/info@contoso.test/Sent"])
	}
	subs, _ := anna.List("", "Shared/*", &goimap.ListOptions{SelectSubscribed: true}).Collect()
	if len(subs) < 3 {
		t.Fatalf("shared folders not subscribed: %v", subs)
	}

	// A reader reads, searches, and is refused every change.
	carl := ts.login(t, "carl")
	if _, err := carl.Select("Shared/info@contoso.test/INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := carl.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatalf("reader fetch: %v", err)
	}
	refused := map[string]error{
		"store":   carl.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(),
		"expunge": carl.Expunge().Close(),
		"create":  carl.Create("Shared/info@contoso.test/New", nil).Wait(),
		"delete":  carl.Delete("Shared/info@contoso.test/Sent").Wait(),
	}
	_, refused["move"] = carl.Move(goimap.SeqSetNum(1), "INBOX").Wait()
	app := carl.Append("Shared/info@contoso.test/INBOX", 3, nil)
	app.Write([]byte("x\r\n"))
	app.Close()
	_, refused["append"] = app.Wait()
	for cmd, err := range refused {
		if imapCode(err) != goimap.ResponseCodeNoPerm {
			t.Errorf("reader %s: %v, want NO [NOPERM]", cmd, err)
		}
	}
	// CLOSE removes nothing for a reader, and is no error (RFC 3501 6.4.2).
	closer := ts.login(t, "carl")
	if _, err := closer.Select("Shared/info@contoso.test/INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := closer.UnselectAndExpunge().Wait(); err != nil {
		t.Errorf("reader CLOSE: %v", err)
	}
	// The reader's refused \Seen left the message unread for the team.
	msgs, _ := anna.Select("Shared/info@contoso.test/INBOX", nil).Wait()
	_ = msgs

	// A non-member sees nothing.
	ts.dir.revoke("carl", "info")
	other := ts.login(t, "carl")
	list, _ = other.List("", "*", nil).Collect()
	for _, l := range list {
		if strings.HasPrefix(l.Mailbox, "Shared") {
			t.Fatalf("non-member lists %q", l.Mailbox)
		}
	}
	if _, err := other.Select("Shared/info@contoso.test/INBOX", nil).Wait(); imapCode(err) != goimap.ResponseCodeNonExistent {
		t.Fatalf("non-member select: %v", err)
	}
	if _, err := other.Status("Shared/info@contoso.test/INBOX", &goimap.StatusOptions{NumMessages: true}).Wait(); imapCode(err) != goimap.ResponseCodeNonExistent {
		t.Fatalf("non-member status: %v", err)
	}
	// Revalidate ends the reader's session that lost access.
	ts.srv.Revalidate()
	select {
	case <-carl.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("session of a removed member stayed open")
	}
}

func TestMasterLoginForms(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "info", "Subject: shared\n\nx\n")
	for _, username := range []string{"info@contoso.test*anna@contoso.test", `anna@contoso.test\info@contoso.test`} {
		c := ts.dial(t, username, "anna-pw", nil)
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil || sel.NumMessages != 1 {
			t.Fatalf("%s: select %+v %v", username, sel, err)
		}
	}
	for _, tc := range []struct{ user, pass string }{
		{"info@contoso.test*carl@contoso.test", "carl-pw"},
		{"info@contoso.test", "anything"},
		{"info@contoso.test*anna@contoso.test", "wrong"},
	} {
		c, err := imapclient.DialInsecure(ts.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(tc.user, tc.pass).Wait(); err == nil {
			t.Errorf("login %s succeeded", tc.user)
		}
		c.Close()
	}
}

func TestPerUserSeen(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.dir.grant("anna", "info", false, true)
	ts.dir.grant("bo", "info", false, true)
	ts.deliver(t, "info", "Subject: shared\n\nx\n")
	anna, bo := ts.login(t, "anna"), ts.login(t, "bo")
	for _, c := range []*imapclient.Client{anna, bo} {
		if _, err := c.Select("Shared/info@contoso.test/INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := anna.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}
	seen := func(c *imapclient.Client) bool {
		msgs, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(msgs[0].Flags, goimap.FlagSeen)
	}
	if !seen(anna) || seen(bo) {
		t.Fatalf("anna seen %v, bo seen %v", seen(anna), seen(bo))
	}
	st, _ := bo.Status("Shared/info@contoso.test/INBOX", &goimap.StatusOptions{NumUnseen: true}).Wait()
	if st == nil || *st.NumUnseen != 1 {
		t.Fatalf("bo unseen %+v", st)
	}
}

func TestAppendOverQuotaAndFolders(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.dir.mu.Lock()
	mb := ts.dir.mailboxes["bo"]
	mb.Quota = 50
	ts.dir.mailboxes["bo"] = mb
	ts.dir.mu.Unlock()
	c := ts.login(t, "bo")
	msg := strings.Repeat("x", 60) + "\r\n"
	app := c.Append("INBOX", int64(len(msg)), nil)
	app.Write([]byte(msg))
	app.Close()
	if _, err := app.Wait(); imapCode(err) != goimap.ResponseCodeOverQuota {
		t.Fatalf("append over quota: %v", err)
	}
	if err := c.Create("Projects/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Projects", "Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, _ := c.List("", "Work/*", nil).Collect()
	if len(list) != 1 || list[0].Mailbox != "Work/2026" {
		t.Fatalf("after rename: %+v", list)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Fatal("INBOX deleted")
	}
	var imapErr *goimap.Error
	if _, err := c.Select("Nope", nil).Wait(); !errors.As(err, &imapErr) || imapErr.Type != goimap.StatusResponseTypeNo {
		t.Fatalf("select missing: %v", err)
	}
}

func TestCopyMoveStatusAndCapabilities(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for i := range 3 {
		ts.deliver(t, "anna", "Subject: m"+string(rune('0'+i))+"\n\nbody\n")
	}
	c := ts.login(t, "anna")
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []goimap.Cap{goimap.CapIMAP4rev1, goimap.CapIMAP4rev2, goimap.CapIdle, goimap.CapNamespace, goimap.CapUIDPlus,
		goimap.CapMove, goimap.CapSpecialUse, goimap.CapListStatus, goimap.CapStatusSize, goimap.CapEnable, goimap.CapUnselect,
		goimap.CapLiteralPlus, goimap.CapSASLIR} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing", want)
		}
	}
	if !caps.Has(goimap.Cap("APPENDLIMIT=1048576")) {
		t.Errorf("APPENDLIMIT missing: %v", caps)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	copied, err := c.Copy(goimap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil || copied.UIDValidity == 0 || copied.DestUIDs.String() != "1:2" {
		t.Fatalf("COPY: %+v %v", copied, err)
	}
	moved, err := c.Move(goimap.SeqSetNum(3), "Trash").Wait()
	if err != nil || moved.DestUIDs.String() != "1" {
		t.Fatalf("MOVE: %+v %v", moved, err)
	}
	if _, err := c.Copy(goimap.SeqSetNum(1), "Missing").Wait(); imapCode(err) != goimap.ResponseCodeTryCreate {
		t.Fatalf("COPY to a missing folder: %v", err)
	}
	c.Store(goimap.SeqSetNum(1, 2), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close()
	if err := c.UIDExpunge(goimap.UIDSetNum(2)).Close(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("INBOX", &goimap.StatusOptions{NumMessages: true, Size: true, UIDNext: true, NumDeleted: true}).Wait()
	if err != nil || *st.NumMessages != 1 || *st.Size == 0 || st.UIDNext != 4 || *st.NumDeleted != 1 {
		t.Fatalf("STATUS INBOX: %+v %v", st, err)
	}
	list, err := c.List("", "*", &goimap.ListOptions{ReturnStatus: &goimap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint32{}
	for _, l := range list {
		if l.Status != nil && l.Status.NumMessages != nil {
			counts[l.Mailbox] = *l.Status.NumMessages
		}
	}
	if counts["Archive"] != 2 || counts["Trash"] != 1 || counts["INBOX"] != 1 {
		t.Fatalf("LIST-STATUS counts %v", counts)
	}
}

// TestFlagsListKeywords: SELECT's FLAGS and PERMANENTFLAGS name the
// keywords already used in the folder, for clients that build their list
// of tags from them.
func TestFlagsListKeywords(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "Subject: one\n\nx\n")
	ts.deliver(t, "anna", "Subject: two\n\nx\n")
	anna := ts.login(t, "anna")
	sel, err := anna.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(sel.Flags, "$Important") {
		t.Fatalf("FLAGS before any keyword: %v", sel.Flags)
	}
	if err := anna.Store(goimap.SeqSetNum(2), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{"$Important", "Old"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := anna.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err = anna.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []goimap.Flag{goimap.FlagSeen, goimap.FlagDraft, "$Important", "Old"} {
		if !slices.Contains(sel.Flags, want) || !slices.Contains(sel.PermanentFlags, want) {
			t.Errorf("FLAGS %v / PERMANENTFLAGS %v lack %s", sel.Flags, sel.PermanentFlags, want)
		}
	}
	if !slices.Contains(sel.PermanentFlags, goimap.FlagWildcard) {
		t.Errorf("PERMANENTFLAGS %v lack \\*", sel.PermanentFlags)
	}
}
