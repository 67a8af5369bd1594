package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postkasse.dev/postkasse/mailfile"
)

// imapMessage is a message as an IMAP client sees it.
type imapMessage struct {
	folder, subject string
	flags           []string
	date            time.Time
	body            []byte
}

// mailboxContents fetches every message of every folder of a login.
func mailboxContents(t *testing.T, c *imapclient.Client) []imapMessage {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []imapMessage
	for _, l := range list {
		if strings.HasPrefix(l.Mailbox, "Shared") || slices.Contains(l.Attrs, goimap.MailboxAttrNoSelect) {
			continue
		}
		sel, err := c.Select(l.Mailbox, &goimap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sel.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{
			Flags: true, Envelope: true, InternalDate: true, BodySection: []*goimap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var flags []string
			for _, f := range m.Flags {
				if f != `\Recent` {
					flags = append(flags, string(f))
				}
			}
			sort.Strings(flags)
			out = append(out, imapMessage{folder: l.Mailbox, subject: m.Envelope.Subject, flags: flags, date: m.InternalDate, body: m.FindBodySection(&goimap.FetchItemBodySection{})})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].subject < out[j].subject })
	return out
}

func mail(subject, body string) string {
	return "From: sender@example.org\nTo: tester@example.org\nSubject: " + subject + "\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\n\n" + body + "\n"
}

// TestImportDovecotMaildirAndExport: a Maildir written by Dovecot, with a
// subfolder, a folder name outside ASCII, flags and keywords, is filed
// through the running server with its folders, flags, keywords and file
// times; a second import files nothing; the export, read by Dovecot, has
// the same messages with the same flags and dates, and the bodies IMAP
// serves byte for byte.
func TestImportDovecotMaildirAndExport(t *testing.T) {
	t.Parallel()
	dv := startDovecot(t)
	dv.adm(nil, "mailbox", "create", "Sub.Folder", "Entwürfe")
	dv.deliver("INBOX", mail("alpha", "first"))
	dv.deliver("INBOX", mail("bravo", "From the start of a line\nsecond"))
	dv.deliver("Sub.Folder", mail("charlie", "third"))
	dv.deliver("Entwürfe", mail("delta", "fourth"))
	dv.adm(nil, "flags", "add", `\Seen \Answered`, "mailbox", "INBOX", "uid", "1")
	dv.adm(nil, "flags", "add", `\Flagged $Label1 work`, "mailbox", "Sub.Folder", "all")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	files, _ := filepath.Glob(filepath.Join(dv.mail, "cur", "*"))
	fresh, _ := filepath.Glob(filepath.Join(dv.mail, "new", "*"))
	for _, f := range append(files, fresh...) {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("Subject: alpha")) {
			os.Chtimes(f, old, old)
		}
	}

	ts := startServer(t, "")
	ts.serveControlSocket()
	var out, errOut bytes.Buffer
	if code := run([]string{"import", "-config", ts.cfgPath, "anna@contoso.test", dv.mail}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "4 messages filed into anna@contoso.test, 0 already there") {
		t.Fatalf("import: exit %d %s%s", code, out.String(), errOut.String())
	}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	got := mailboxContents(t, c)
	want := []struct {
		folder, subject string
		flags           []string
	}{
		{"INBOX", "alpha", []string{`\Answered`, `\Seen`}},
		{"INBOX", "bravo", nil},
		{"Sub/Folder", "charlie", []string{"$Label1", `\Flagged`, "work"}},
		{"Entwürfe", "delta", nil},
	}
	if len(got) != len(want) {
		t.Fatalf("anna has %d messages after the import: %+v", len(got), got)
	}
	for i, w := range want {
		if got[i].folder != w.folder || got[i].subject != w.subject || !slices.Equal(got[i].flags, w.flags) {
			t.Errorf("message %d: %s %q %q, want %s %q %q", i, got[i].folder, got[i].subject, got[i].flags, w.folder, w.subject, w.flags)
		}
	}
	if !got[0].date.Equal(old) {
		t.Errorf("alpha's internal date %v, want the file's %v", got[0].date, old)
	}
	if !bytes.Contains(got[1].body, []byte("\r\n\r\nFrom the start of a line\r\nsecond\r\n")) {
		t.Errorf("bravo's body %q", got[1].body)
	}

	out.Reset()
	if code := run([]string{"import", "-config", ts.cfgPath, "anna@contoso.test", dv.mail}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "0 messages filed into anna@contoso.test, 4 already there") {
		t.Fatalf("second import: exit %d %s%s", code, out.String(), errOut.String())
	}
	if again := mailboxContents(t, c); len(again) != 4 {
		t.Fatalf("after the second import anna has %d messages", len(again))
	}

	exported := filepath.Join(dv.dir, "export")
	if code := run([]string{"export", "-config", ts.cfgPath, "anna@contoso.test", exported}, nil, &out, &errOut); code != 0 {
		t.Fatalf("export: exit %d %s", code, errOut.String())
	}
	checkExportWithDovecot(t, dv, exported, got)
}

// checkExportWithDovecot reads an export with doveadm and compares it
// with what IMAP showed: folders, subjects, flags, dates; and the files'
// bytes with the bodies IMAP served.
func checkExportWithDovecot(t *testing.T, dv *dovecot, exported string, want []imapMessage) {
	t.Helper()
	for _, w := range want {
		found := false
		filepath.Walk(exported, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() && strings.Contains(p, string(filepath.Separator)+"cur"+string(filepath.Separator)) {
				if b, _ := os.ReadFile(p); bytes.Equal(b, w.body) {
					found = found || fi.ModTime().Unix() == w.date.Unix() // IMAP dates have seconds only
				}
			}
			return nil
		})
		if !found {
			t.Errorf("no exported file holds %q byte for byte with its internal date as mtime", w.subject)
		}
	}
	chownTree(t, exported)
	opts := []string{"mail_location=maildir:" + exported}
	text := dv.adm(opts, "fetch", "mailbox flags date.received hdr.subject", "all")
	var got []string
	for _, rec := range strings.Split(text, "\f") {
		fields := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(rec), "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["mailbox"] == "" {
			continue
		}
		flags := strings.Fields(strings.ReplaceAll(fields["flags"], `\Recent`, ""))
		sort.Strings(flags)
		subject := regexp.MustCompile(`(?i)^subject:\s*`).ReplaceAllString(fields["hdr.subject"], "")
		got = append(got, strings.Join([]string{subject, fields["mailbox"], strings.Join(flags, " "), fields["date.received"]}, "|"))
	}
	sort.Strings(got)
	var expect []string
	for _, w := range want {
		folder := strings.ReplaceAll(w.folder, "/", ".")
		expect = append(expect, strings.Join([]string{w.subject, folder, strings.Join(w.flags, " "), w.date.Local().Format("2006-01-02 15:04:05")}, "|"))
	}
	sort.Strings(expect)
	if !slices.Equal(got, expect) {
		t.Fatalf("Dovecot reads the export as\n%s\nwant\n%s\n(doveadm said:\n%s)", strings.Join(got, "\n"), strings.Join(expect, "\n"), text)
	}
}

// TestImportMuttMbox: an mbox written by neomutt (its Fcc copy, with
// Content-Length and an unquoted "From " line in the body) is filed into
// -folder, \Seen from its Status, bodies exactly as sent.
func TestImportMuttMbox(t *testing.T) {
	t.Parallel()
	mutt := needTool(t, "neomutt")
	dir := t.TempDir()
	mbox := filepath.Join(dir, "sent.mbox")
	for i, body := range []string{"From me, a line mutt leaves as it is\nsecond line\n", ">From a quoted line\nend\n"} {
		cmd := exec.Command(mutt, "-n", "-F", "/dev/null", "-e", "set record="+mbox, "-e", "set mbox_type=mbox",
			"-e", "set sendmail=/bin/true", "-e", "set copy=yes", "-e", "set from=bo@contoso.test",
			"-s", "mutt "+string(rune('a'+i)), "--", "anna@contoso.test")
		cmd.Stdin = strings.NewReader(body)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("neomutt: %v %s", err, out)
		}
	}
	ts := startServer(t, "")
	ts.serveControlSocket()
	var out, errOut bytes.Buffer
	if code := run([]string{"import", "-config", ts.cfgPath, "-folder", "Old mail", "bo@contoso.test", mbox}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "2 messages filed") {
		t.Fatalf("import: exit %d %s%s", code, out.String(), errOut.String())
	}
	c := ts.login("bo@contoso.test", "bo-secret", nil)
	got := mailboxContents(t, c)
	if len(got) != 2 {
		t.Fatalf("bo has %d messages: %+v", len(got), got)
	}
	for i, want := range []string{"\r\n\r\nFrom me, a line mutt leaves as it is\r\nsecond line\r\n", "\r\n\r\n>From a quoted line\r\nend\r\n"} {
		m := got[i]
		if m.folder != "Old mail" || !slices.Equal(m.flags, []string{`\Seen`}) || !bytes.HasSuffix(m.body, []byte(want)) ||
			bytes.Contains(m.body, []byte("Status:")) || bytes.Contains(m.body, []byte("Content-Length:")) || time.Since(m.date) > time.Hour {
			t.Errorf("message %d: %s %q %v %q", i, m.folder, m.flags, m.date, m.body)
		}
	}
}

// TestImportStopsAtQuota: with no server running, an import into a small
// mailbox stops with a sentence at the first message that does not fit,
// and a second run after the quota is raised files the rest only.
func TestImportStopsAtQuota(t *testing.T) {
	t.Parallel()
	cfgPath, data := writeTestConfig(t, doraConfig)
	src := filepath.Join(t.TempDir(), "Maildir")
	w, err := mailfile.NewMaildirWriter(src)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		body := "Subject: big " + string(rune('a'+i)) + "\r\n\r\n" + strings.Repeat("x", 3000) + "\r\n"
		if err := w.Write(&mailfile.Message{Folder: "INBOX", Date: time.Now(), Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"import", "-config", cfgPath, "dora@contoso.test", src}, nil, &out, &errOut); code != 1 ||
		!regexp.MustCompile(`dora@contoso.test is full \(quota 10.0 kB\): stopped at \S+; 3 messages filed before it`).MatchString(errOut.String()) {
		t.Fatalf("import over quota: exit %d %s%s", code, out.String(), errOut.String())
	}
	raised := strings.ReplaceAll(baseConfig+strings.Replace(doraConfig, `"10KB"`, `"1MB"`, 1), "DATA", data)
	if err := os.WriteFile(cfgPath, []byte(raised), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"import", "-config", cfgPath, "dora@contoso.test", src}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "2 messages filed into dora@contoso.test, 3 already there") {
		t.Fatalf("import after raising the quota: exit %d %s%s", code, out.String(), errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"import", "-config", cfgPath, "nobody@contoso.test", src}, nil, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "not the address of a user or shared mailbox") {
		t.Fatalf("import into no mailbox: exit %d %s", code, errOut.String())
	}
}
