package mailfile

import (
	"bufio"
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMUTF7(t *testing.T) {
	t.Parallel()
	for utf8, enc := range map[string]string{
		"Entwürfe": "Entw&APw-rfe", "A&B": "A&-B", "日本語": "&ZeVnLIqe-", "plain": "plain",
	} {
		if got := encodeMUTF7(utf8); got != enc {
			t.Errorf("encode %q = %q, want %q", utf8, got, enc)
		}
		if got, err := decodeMUTF7(enc); err != nil || got != utf8 {
			t.Errorf("decode %q = %q %v, want %q", enc, got, err, utf8)
		}
	}
	for _, bad := range []string{"&", "&Jjo", "&A-"} {
		if _, err := decodeMUTF7(bad); err == nil {
			t.Errorf("decode %q: no error", bad)
		}
	}
}

// TestMaildirRoundTrip: what MaildirWriter writes, ReadMaildirFolder reads
// back: folders, flags, keywords, dates and bodies.
func TestMaildirRoundTrip(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "Maildir")
	w, err := NewMaildirWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	in := []*Message{
		{Folder: "INBOX", Flags: []string{`\Seen`, "$Label1"}, Date: date, Body: []byte("Subject: a\r\n\r\none\r\n")},
		{Folder: "Sub/Entwürfe", Flags: []string{`\Answered`, `\Flagged`, "work", `\Recent`}, Date: date.Add(time.Hour), Body: []byte("Subject: b\r\n\r\ntwo\r\n")},
	}
	for _, m := range in {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMaildirWriter(root); err == nil {
		t.Fatal("a second export into the same directory was allowed")
	}
	names, dirs, err := MaildirFolders(root)
	if err != nil || !slices.Equal(names, []string{"INBOX", "Sub/Entwürfe"}) || filepath.Base(dirs[1]) != ".Sub.Entw&APw-rfe" {
		t.Fatalf("folders %q %q %v", names, dirs, err)
	}
	var out []*Message
	for i := range names {
		if err := ReadMaildirFolder(dirs[i], names[i], func(m *Message) error { out = append(out, m); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	want := [][]string{{"$Label1", `\Seen`}, {`\Answered`, `\Flagged`, "work"}}
	for i, m := range out {
		slices.Sort(m.Flags)
		if m.Folder != in[i].Folder || !m.Date.Equal(in[i].Date) || !bytes.Equal(m.Body, in[i].Body) || !slices.Equal(m.Flags, want[i]) {
			t.Errorf("message %d: %+v", i, m)
		}
	}
}

const mboxFixture = `From anna@contoso.test Thu Mar  7 09:15:02 2024
Return-Path: <anna@contoso.test>
From: anna@contoso.test
Subject: first
Status: RO
X-Status: AF
X-Keywords: $Label1 work
Content-Length: 42

>From here on, a quoted line.
>>From stays quoted once.
A From in the middle of a line is fine.

From bo@contoso.test Fri Mar  8 10:00:00 2024
From: bo@contoso.test
Subject: second
Status: O

unread

`

func TestReadMbox(t *testing.T) {
	t.Parallel()
	var got []*Message
	err := ReadMbox(strings.NewReader(mboxFixture), "fixture", "Old", func(m *Message) error { got = append(got, m); return nil })
	if err != nil || len(got) != 2 {
		t.Fatalf("%d messages, %v", len(got), err)
	}
	first := "Return-Path: <anna@contoso.test>\r\nFrom: anna@contoso.test\r\nSubject: first\r\n\r\nFrom here on, a quoted line.\r\n>From stays quoted once.\r\nA From in the middle of a line is fine.\r\n"
	if string(got[0].Body) != first {
		t.Errorf("first body %q", got[0].Body)
	}
	if !slices.Equal(got[0].Flags, []string{`\Seen`, `\Answered`, `\Flagged`, "$Label1", "work"}) {
		t.Errorf("first flags %q", got[0].Flags)
	}
	if want := time.Date(2024, 3, 7, 9, 15, 2, 0, time.Local); !got[0].Date.Equal(want) || got[0].Folder != "Old" {
		t.Errorf("first date %v folder %q", got[0].Date, got[0].Folder)
	}
	if string(got[1].Body) != "From: bo@contoso.test\r\nSubject: second\r\n\r\nunread\r\n" || len(got[1].Flags) != 0 {
		t.Errorf("second %q %q", got[1].Body, got[1].Flags)
	}
	if err := ReadMbox(strings.NewReader("Subject: no From line\n"), "x", "INBOX", func(*Message) error { return nil }); err == nil {
		t.Error("a file without a From line was read as an mbox")
	}
}

// muttFixture is what neomutt writes to an mbox (its Fcc): a right
// Content-Length, and "From " lines of the body left unquoted.
const muttFixture = `From anna@contoso.test Fri Dec  4 18:31:03 2026
From: root <anna@contoso.test>
Subject: mutt subject
Status: RO
Content-Length: 35
Lines: 4

From me
line two
>From quoted
body

From anna@contoso.test Fri Dec  4 18:31:04 2026
Subject: wrong length
Content-Length: 3

x
From me
`

func TestReadMboxContentLength(t *testing.T) {
	t.Parallel()
	var got []*Message
	if err := ReadMbox(strings.NewReader(muttFixture), "mutt", "INBOX", func(m *Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d messages", len(got))
	}
	if want := "From: root <anna@contoso.test>\r\nSubject: mutt subject\r\n\r\nFrom me\r\nline two\r\n>From quoted\r\nbody\r\n"; string(got[0].Body) != want || !slices.Equal(got[0].Flags, []string{`\Seen`}) {
		t.Errorf("by length: %q %q", got[0].Body, got[0].Flags)
	}
	// A wrong length is not believed: the lines decide.
	if string(got[1].Body) != "Subject: wrong length\r\n\r\nx\r\n" {
		t.Errorf("wrong length: %q", got[1].Body)
	}
}

func FuzzReadMbox(f *testing.F) {
	f.Add([]byte(mboxFixture))
	f.Add([]byte(muttFixture))
	f.Add([]byte("From x\n>From y\nStatus: R\n \tcont\n\nbody"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ReadMbox(bytes.NewReader(data), "fuzz", "INBOX", func(m *Message) error {
			if bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\n")) {
				t.Fatalf("bare LF left in %q", m.Body)
			}
			return nil
		})
	})
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"Entw&APw-rfe", "&-", "&ZeVnLIqe-", "a&b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decodeMUTF7(s)
		if err != nil {
			return
		}
		if back, err := decodeMUTF7(encodeMUTF7(d)); err != nil || back != d {
			t.Fatalf("%q: decoded %q, round trip %q %v", s, d, back, err)
		}
	})
}

func FuzzMaildirName(f *testing.F) {
	f.Add("1700000000.M1P2.host,S=30:2,FSab", "0 $Label1\n1 work\n")
	f.Fuzz(func(t *testing.T, name, keywordFile string) {
		kws, err := parseKeywords(bufio.NewScanner(strings.NewReader(keywordFile)))
		if err != nil {
			return
		}
		for _, fl := range flagsOfName(name, kws) {
			if fl == "" || strings.ContainsAny(fl, " \r\n") {
				t.Fatalf("flag %q from %q", fl, name)
			}
		}
	})
}
