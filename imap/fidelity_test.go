package imap

import (
	"fmt"
	"strings"
	"testing"
)

// The transcripts of issue 10, one test per behaviour: exact commands and
// the exact untagged responses a real connection must get.

const systemFlagsLine = `\Seen \Answered \Flagged \Deleted \Draft`

// TestTranscriptLibraryFixes: what go-imap beta.9 gives once used: a "read"
// grantee's SELECT is [READ-ONLY], a malformed sequence set is BAD.
func TestTranscriptLibraryFixes(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.dir.grant("carl", "info", true, false)
	ts.deliver(t, "info", "Subject: shared\n\nhello\n")
	c := ts.raw(t, "carl")
	untagged, tagged := c.do(`SELECT "Shared/info@contoso.test/INBOX"`)
	if tagged != "OK [READ-ONLY] SELECT completed" {
		t.Fatalf("SELECT by a reader: %s", tagged)
	}
	wantContains(t, "reader's SELECT", untagged, "* 1 EXISTS", `* OK [PERMANENTFLAGS ()] Permanent flags`)
	for _, cmd := range []string{"FETCH 1:x FLAGS", "UID STORE 0 +FLAGS (x)", "UID FETCH 4294967296 UID"} {
		if untagged, tagged := c.do(cmd); !strings.HasPrefix(tagged, "BAD [CLIENTBUG] Syntax error: invalid sequence-set") || len(untagged) != 0 {
			t.Errorf("%s: %q %s", cmd, untagged, tagged)
		}
	}

	// A reader who keeps their own \Seen may set it: READ-WRITE, \Seen only.
	ts.dir.grant("bo", "info", true, true)
	b := ts.raw(t, "bo")
	untagged, tagged = b.do(`SELECT "Shared/info@contoso.test/INBOX"`)
	if tagged != "OK [READ-WRITE] SELECT completed" {
		t.Fatalf("SELECT by a per-user reader: %s", tagged)
	}
	wantContains(t, "per-user reader's SELECT", untagged, `* OK [PERMANENTFLAGS (\Seen)] Permanent flags`)
}

// TestTranscriptListDelimiter (1): LIST "" "" asks for the delimiter.
func TestTranscriptListDelimiter(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	wantLines(t, `LIST "" ""`, a.ok(`LIST "" ""`), []string{`* LIST (\Noselect) "/" ""`})
	wantLines(t, `LIST "Shared/info@contoso.test" ""`, a.ok(`LIST "Shared/info@contoso.test" ""`), []string{`* LIST (\Noselect) "/" "Shared/"`})
}

// TestTranscriptRecent (2, 14): EXAMINE reports \Recent without taking it,
// STATUS counts it, SELECT takes it, a new message is \Recent in exactly
// one session, and RECENT comes with EXISTS.
func TestTranscriptRecent(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "Subject: one\n\n1\n")
	ts.deliver(t, "anna", "Subject: two\n\n2\n")
	a, b, c := ts.raw(t, "anna"), ts.raw(t, "anna"), ts.raw(t, "anna")

	wantContains(t, "EXAMINE", a.ok("EXAMINE INBOX"), "* 2 EXISTS", "* 2 RECENT")
	wantLines(t, "STATUS after EXAMINE", b.ok("STATUS INBOX (RECENT)"), []string{"* STATUS INBOX (RECENT 2)"})
	wantContains(t, "first SELECT", a.ok("SELECT INBOX"), "* 2 EXISTS", "* 2 RECENT")
	wantContains(t, "second SELECT", b.ok("SELECT INBOX"), "* 2 EXISTS", "* 0 RECENT")

	ts.deliver(t, "anna", "Subject: three\n\n3\n")
	wantLines(t, "NOOP of the session that takes \\Recent", a.ok("NOOP"), []string{"* 3 EXISTS", "* 3 RECENT"})
	wantLines(t, "NOOP of the other session", b.ok("NOOP"), []string{"* 3 EXISTS", "* 0 RECENT"})
	wantLines(t, "FETCH in the first", a.ok("FETCH 3 FLAGS"), []string{`* 3 FETCH (FLAGS (\Recent))`})
	wantLines(t, "FETCH in the second", b.ok("FETCH 3 FLAGS"), []string{`* 3 FETCH (FLAGS ())`})
	wantLines(t, "SEARCH RECENT in the second", b.ok("SEARCH RECENT"), []string{"* SEARCH"})
	wantLines(t, "STATUS of a third", c.ok("STATUS INBOX (RECENT)"), []string{"* STATUS INBOX (RECENT 0)"})

	// What the first session was shown stays taken after it leaves.
	a.ok("LOGOUT")
	wantContains(t, "SELECT after the first left", c.ok("SELECT INBOX"), "* 3 EXISTS", "* 0 RECENT")
}

// TestTranscriptNewKeywordFlags (3): a keyword new to the folder reaches
// every session as FLAGS before a FETCH shows it.
func TestTranscriptNewKeywordFlags(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "Subject: one\n\n1\n")
	a, b := ts.raw(t, "anna"), ts.raw(t, "anna")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	flagsLine := `* FLAGS (` + systemFlagsLine + ` project-x)`
	wantLines(t, "STORE of a new keyword", a.ok("STORE 1 +FLAGS (project-x)"),
		[]string{flagsLine, `* 1 FETCH (UID 1 FLAGS (project-x \Recent))`})
	wantLines(t, "the other session", b.ok("NOOP"), []string{flagsLine, `* 1 FETCH (UID 1 FLAGS (project-x))`})
	// A known keyword needs no FLAGS.
	wantLines(t, "STORE of a known keyword", a.ok("STORE 1 -FLAGS (project-x)"), []string{`* 1 FETCH (FLAGS (\Recent))`})
	wantLines(t, "the other session again", b.ok("NOOP"), []string{`* 1 FETCH (UID 1 FLAGS ())`})
	wantContains(t, "a later SELECT", b.ok("SELECT INBOX"), flagsLine)

	// A keyword that comes with an APPEND is announced before the EXISTS.
	b.send("t9 APPEND INBOX (fresh-kw) {13+}\r\nSubject: x\r\n\r\n")
	b.until("t9")
	wantContains(t, "after an APPEND with a new keyword", a.ok("NOOP"),
		`* FLAGS (`+systemFlagsLine+` fresh-kw project-x)`, "* 2 EXISTS")
}

// TestTranscriptCopyMoveSameFolder (4): COPY and MOVE into the selected
// folder make new messages.
func TestTranscriptCopyMoveSameFolder(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "Subject: one\n\n1\n")
	ts.deliver(t, "anna", "Subject: two\n\n2\n")
	a := ts.raw(t, "anna")
	v := uidValidity(t, a.ok("SELECT INBOX"))
	untagged, tagged := a.do("UID COPY 1 INBOX")
	wantLines(t, "UID COPY into itself", untagged, []string{"* 3 EXISTS", "* 3 RECENT"})
	if tagged != "OK [COPYUID "+v+" 1 3] COPY completed" {
		t.Fatalf("UID COPY: %s", tagged)
	}
	wantLines(t, "UID MOVE into itself", a.ok("UID MOVE 2 INBOX"),
		[]string{"* OK [COPYUID " + v + " 2 4] COPY completed", "* 4 EXISTS", "* 2 EXPUNGE", "* 3 RECENT"})
	wantLines(t, "what is left", a.ok("UID FETCH 1:* UID"),
		[]string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)"})
}

// TestTranscriptSubscriptions (5): CREATE does not subscribe; LIST
// (SUBSCRIBED) shows vanished subscriptions; RECURSIVEMATCH and LSUB show
// unsubscribed parents of subscribed folders.
func TestTranscriptSubscriptions(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	a.ok("CREATE Projects/Alpha")
	wantLines(t, "LSUB after CREATE", a.ok(`LSUB "" "Projects*"`), nil)
	wantLines(t, "LIST (SUBSCRIBED) after CREATE", a.ok(`LIST (SUBSCRIBED) "" "Projects*"`), nil)
	a.ok("SUBSCRIBE Projects/Alpha")
	wantContains(t, `LSUB "" "%"`, a.ok(`LSUB "" "%"`), `* LSUB (\HasChildren \Noselect) "/" "Projects"`)
	wantLines(t, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "Proj%"`, a.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "Proj%"`),
		[]string{`* LIST (\HasChildren) "/" "Projects" (CHILDINFO ("SUBSCRIBED"))`})
	wantLines(t, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "Proj*"`, a.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "Proj*"`),
		[]string{`* LIST (\HasNoChildren \Subscribed) "/" "Projects/Alpha"`})
	a.ok("DELETE Projects/Alpha")
	wantLines(t, "LIST (SUBSCRIBED) after DELETE", a.ok(`LIST (SUBSCRIBED) "" "Projects/*"`),
		[]string{`* LIST (\NonExistent \Subscribed) "/" "Projects/Alpha"`})
	wantLines(t, "LIST after DELETE", a.ok(`LIST "" "Projects/*"`), nil)
}

// TestTranscriptPerUserSeen (8): with per-user \Seen, EXAMINE shows the
// member's own \Seen, and a change of shared flags reaches each member with
// their own \Seen.
func TestTranscriptPerUserSeen(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.dir.grant("anna", "info", false, true)
	ts.dir.grant("bo", "info", false, true)
	ts.deliver(t, "info", "Subject: shared\n\nhello\n")
	const inbox = `"Shared/info@contoso.test/INBOX"`
	a, b := ts.raw(t, "anna"), ts.raw(t, "bo")
	a.ok("SELECT " + inbox)
	a.ok("FETCH 1 BODY[]")
	a.ok("EXAMINE " + inbox)
	wantLines(t, "anna's EXAMINE", a.ok("FETCH 1 FLAGS"), []string{`* 1 FETCH (FLAGS (\Seen))`})
	b.ok("EXAMINE " + inbox)
	wantLines(t, "bo's EXAMINE", b.ok("FETCH 1 FLAGS"), []string{`* 1 FETCH (FLAGS ())`})

	a.ok("SELECT " + inbox)
	b.ok("SELECT " + inbox)
	wantLines(t, "bo flags it", b.ok("STORE 1 +FLAGS (\\Flagged)"), []string{`* 1 FETCH (FLAGS (\Flagged))`})
	wantLines(t, "anna is told, with her \\Seen", a.ok("NOOP"), []string{`* 1 FETCH (UID 1 FLAGS (\Flagged \Seen))`})
	a.ok("STORE 1 -FLAGS (\\Flagged)")
	wantLines(t, "bo is told, without anna's \\Seen", b.ok("NOOP"), []string{`* 1 FETCH (UID 1 FLAGS ())`})
}

// TestTranscriptMailboxNames (9, 10): names that are not valid modified
// UTF-7 or break the limits get a clean answer.
func TestTranscriptMailboxNames(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	if _, tagged := a.do(`SELECT "&Jjo"`); !strings.HasPrefix(tagged, "BAD [CLIENTBUG]") {
		t.Errorf("SELECT of bad UTF-7: %s", tagged)
	}
	for name, want := range map[string]string{
		`"a/../b"`:                                    "NO [CANNOT]",
		`".."`:                                        "NO [CANNOT]",
		`"x/."`:                                       "NO [CANNOT]",
		`"` + strings.Repeat("n", 1025) + `"`:         "NO [LIMIT]",
		`"` + strings.Repeat("n", 10000) + `"`:        "NO [LIMIT]",
		`"` + strings.Repeat("a/", 499) + `a"`:        "NO [LIMIT]",
		`"` + strings.Repeat("a/", 32) + `a"`:         "NO [LIMIT]",
		`"` + strings.Repeat("b/", 31) + `b"`:         "OK",
		`"` + strings.Repeat("c", 1024) + `"`:         "OK",
		`"Shared/info@contoso.test/.."`:               "NO [CANNOT]",
		`"Shared/info@contoso.test/` + "x/../y" + `"`: "NO [CANNOT]",
	} {
		if _, tagged := a.do("CREATE " + name); !strings.HasPrefix(tagged, want) {
			t.Errorf("CREATE %.40s...: %s, want %s", name, tagged, want)
		}
	}
	if _, tagged := a.do(`RENAME Archive "Old/../Archive"`); !strings.HasPrefix(tagged, "NO [CANNOT]") {
		t.Errorf("RENAME to ..: %s", tagged)
	}
	for _, l := range a.ok(`LIST "" "*"`) {
		if strings.Contains(l, `/..`) || strings.Contains(l, `/."`) || strings.Contains(l, `"..`) {
			t.Errorf("a dot name was made: %q", l)
		}
	}
}

// TestTranscriptLiteralTooBig (11): APPEND of a literal beyond the
// message size limit gets NO [TOOBIG] at once, not a "+".
func TestTranscriptLiteralTooBig(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := ts.raw(t, "anna")
	a.send("t1 APPEND INBOX {4294967295}\r\n")
	if line := a.line(); !strings.HasPrefix(line, "t1 NO [TOOBIG]") {
		t.Fatalf("APPEND of 4 GB: %q", line)
	}
	wantLines(t, "the connection goes on", a.ok("NOOP"), nil)
}

// TestTranscriptMoveRace (12): two sessions move the same messages; the
// loser gets a clean OK, never a COPYUID with an empty set or an error
// inside a response.
func TestTranscriptMoveRace(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for range 3 {
		ts.deliver(t, "anna", "Subject: m\n\nm\n")
	}
	a, b := ts.raw(t, "anna"), ts.raw(t, "anna")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	a.ok("UID MOVE 1:3 Archive")
	wantLines(t, "the second MOVE", b.ok("UID MOVE 1:3 Archive"), []string{"* 3 EXPUNGE", "* 2 EXPUNGE", "* 1 EXPUNGE"})

	// The same, at the same time, many times.
	for range 20 {
		ts.deliver(t, "anna", "Subject: m\n\nm\n")
	}
	a.ok("NOOP")
	b.ok("NOOP")
	a.send("m1 UID MOVE 1:* Trash\r\n")
	b.send("m2 UID MOVE 1:* Trash\r\n")
	for _, r := range []struct {
		c   *rawConn
		tag string
	}{{a, "m1"}, {b, "m2"}} {
		untagged, tagged := r.c.until(r.tag)
		if tagged != "OK UID MOVE completed" {
			t.Errorf("%s: %s", r.tag, tagged)
		}
		for _, l := range untagged {
			if !strings.HasSuffix(l, " EXPUNGE") && !strings.HasSuffix(l, "] COPY completed") {
				t.Errorf("%s: unexpected %q", r.tag, l)
			}
		}
	}
	if errs := ts.logs.errors(); len(errs) > 0 {
		t.Errorf("errors logged: %q", errs)
	}
}

// TestTranscriptFetchExpunged (13): FETCH of a message another session
// expunged, before this one was told, answers cleanly.
func TestTranscriptFetchExpunged(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.deliver(t, "anna", "Subject: one\n\n1\n")
	ts.deliver(t, "anna", "Subject: two\n\n2\n")
	a, b := ts.raw(t, "anna"), ts.raw(t, "anna")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	b.ok("EXPUNGE")
	untagged, tagged := a.do("FETCH 1:2 (UID BODY.PEEK[TEXT])")
	wantLines(t, "FETCH of an expunged message", untagged, []string{
		"* 2 FETCH (UID 2 BODY[TEXT] {3}2\r\n)",
	})
	if tagged != "NO [EXPUNGEISSUED] Some of the requested messages no longer exist" {
		t.Fatalf("tagged: %s", tagged)
	}
	wantLines(t, "NOOP after", a.ok("NOOP"), []string{`* 1 FETCH (UID 1 FLAGS (\Deleted \Recent))`, "* 1 EXPUNGE"})
	wantLines(t, "FETCH once told", a.ok("UID FETCH 1:* UID"), []string{"* 1 FETCH (UID 2)"})
	if errs := ts.logs.errors(); len(errs) > 0 {
		t.Errorf("errors logged: %q", errs)
	}
}

// TestFetchWhileExpungingElsewhere (13): FETCHes racing another session's
// expunges answer OK or NO [EXPUNGEISSUED], never an internal error.
func TestFetchWhileExpungingElsewhere(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a, b := ts.raw(t, "anna"), ts.raw(t, "anna")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	for i := range 30 {
		for range 3 {
			ts.deliver(t, "anna", "Subject: m\n\nsome text\n")
		}
		a.ok("NOOP")
		b.ok("NOOP")
		tag := fmt.Sprintf("f%d", i)
		a.send(tag + " FETCH 1:* (FLAGS BODY.PEEK[])\r\n")
		b.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
		b.ok("EXPUNGE")
		if _, tagged := a.until(tag); tagged != "OK FETCH completed" && !strings.HasPrefix(tagged, "NO [EXPUNGEISSUED]") {
			t.Fatalf("FETCH during EXPUNGE: %s", tagged)
		}
	}
	if errs := ts.logs.errors(); len(errs) > 0 {
		t.Errorf("errors logged: %q", errs)
	}
}
