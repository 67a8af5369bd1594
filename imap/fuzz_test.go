package imap

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzAnalyze feeds arbitrary messages through the delivery-time parser:
// it must never panic, and what it writes must always read back.
func FuzzAnalyze(f *testing.F) {
	f.Add([]byte(multipartMessage))
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\n\r\n--a--"))
	f.Add([]byte("garbage without header"))
	f.Fuzz(func(t *testing.T, body []byte) {
		cache := Analyze(body)
		if _, _, err := decodeCache(cache); err != nil {
			t.Fatalf("cache of %q does not decode: %v", body, err)
		}
	})
}

// FuzzDecodeCache makes sure a damaged cache record is an error, not a
// crash.
func FuzzDecodeCache(f *testing.F) {
	f.Add(Analyze([]byte(multipartMessage)))
	f.Add([]byte{cacheVersion, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCache(data)
	})
}

// FuzzIMAPConversation speaks arbitrary bytes to a live IMAP port, over
// login forms, mailbox names, SEARCH criteria and literals. Whatever the
// client sends, the server must never answer with an internal error of its
// own, never panic, and still serve the next client.
func FuzzIMAPConversation(f *testing.F) {
	login := "a LOGIN anna@contoso.test anna-pw\r\n"
	for _, seed := range []string{
		login + "b SELECT INBOX\r\nc SEARCH OR FROM x SUBJECT {3}\r\nabc\r\nd UID SEARCH RETURN (SAVE) 1:* NOT DELETED\r\ne FETCH $ (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
		"a LOGIN info@contoso.test*anna@contoso.test anna-pw\r\nb LIST \"\" *\r\n",
		"a LOGIN \"anna@contoso.test\\\\info@contoso.test\" anna-pw\r\nb SELECT INBOX\r\n",
		"a LOGIN {17}\r\nanna@contoso.test {7+}\r\nanna-pw\r\nb NAMESPACE\r\n",
		"a AUTHENTICATE PLAIN\r\nAGFubmFAY29udG9zby50ZXN0AGFubmEtcHc=\r\nb LSUB \"\" %\r\n",
		login + "b CREATE \"&Jjo\"\r\nc CREATE \"a/../b\"\r\nd CREATE Projects/Alpha\r\ne RENAME Projects \"Shared/x\"\r\nf DELETE Projects/Alpha\r\ng LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"*\" RETURN (STATUS (MESSAGES RECENT))\r\n",
		login + "b SELECT \"Shared/info@contoso.test/INBOX\"\r\nc APPEND \"Shared/info@contoso.test/INBOX\" (\\Seen kw) {11+}\r\nSubject: x\r\nd UID MOVE 1:* INBOX\r\ne EXPUNGE\r\n",
		login + "b EXAMINE INBOX\r\nc SEARCH CHARSET UTF-8 TEXT {4+}\r\nn\xc3\xa5l SENTBEFORE 1-Jan-2020 LARGER 10 OR HEADER X y BODY z\r\nd STATUS INBOX (RECENT UNSEEN DELETED SIZE)\r\n",
		login + "b SELECT INBOX\r\nc STORE 1:* +FLAGS (new-keyword)\r\nd UID COPY 1 INBOX\r\ne FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE BINARY.PEEK[1])\r\n",
		"a LOGIN {4294967295}\r\n",
		login + "b SEARCH SUBJECT \"broken\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	ts := startServerTB(f)
	// A quota keeps COPY 1:* of a folder into itself, run again and
	// again, from doubling the store with every input.
	ts.dir.setQuota("anna", 64<<10)
	ts.dir.setQuota("info", 64<<10)
	ts.deliver(f, "anna", multipartMessage)
	ts.deliver(f, "info", "Subject: shared\n\nhello\n")
	f.Fuzz(func(t *testing.T, input []byte) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write(input)
		conn.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(conn)
		if bytes.Contains(out, []byte("Internal error, reference")) {
			t.Fatalf("after %q the server answered with an internal error:\n%s", input, out)
		}
		probe := ts.raw(t, "anna")
		probe.ok("SELECT INBOX")
		probe.ok("LOGOUT")
		for _, l := range ts.logs.errors() {
			t.Fatalf("after %q: %s", input, l)
		}
		if bytes.Contains(ts.logs.bytes(), []byte("panic")) {
			t.Fatalf("after %q the server panicked", input)
		}
	})
}
