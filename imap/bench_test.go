package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"postkasse.dev/postkasse/store"
)

// BenchmarkFetchEnvelopes10k times UID FETCH 1:* (FLAGS ENVELOPE
// BODYSTRUCTURE RFC822.SIZE INTERNALDATE) of a 10,000-message folder over
// a loopback connection, client decoding included.
func BenchmarkFetchEnvelopes10k(b *testing.B) {
	ts := startServerTB(b)
	const n = 10000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				body := fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: anna@contoso.test\r\nSubject: message number %d\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%d@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello %d\r\n", i, i, i, i, i)
				ts.store.Deliver(context.Background(), &store.Delivery{Body: []byte(body), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}})
			}
		}()
	}
	wg.Wait()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 1<<20)
	r.ReadString('\n')
	fmt.Fprintf(conn, "l LOGIN anna@contoso.test anna-pw\r\ns SELECT INBOX\r\n")
	readUntil(b, r, "s OK")
	b.ResetTimer()
	for range b.N {
		// A raw reader: the figure is the server's, not a client library's.
		fmt.Fprintf(conn, "f UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)\r\n")
		if got := readUntil(b, r, "f OK"); got != n {
			b.Fatalf("fetched %d", got)
		}
	}
}

// readUntil reads response lines until one starts with prefix and counts
// the FETCH responses on the way.
func readUntil(b *testing.B, r *bufio.Reader, prefix string) int {
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasPrefix(line, "* ") && strings.Contains(line, " FETCH ") {
			n++
		}
		if strings.HasPrefix(line, prefix) {
			return n
		}
	}
}

// BenchmarkAnalyze times what delivery does per message to cache its
// envelope and structure: a 4 KiB plain message like mailbench sends.
func BenchmarkAnalyze(b *testing.B) {
	body := []byte("From: Sender <s@example.org>\r\nTo: anna@contoso.test\r\nSubject: a test message\r\n" +
		"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64))
	b.ReportAllocs()
	for b.Loop() {
		Analyze(body)
	}
}

// BenchmarkSearchHeader10k times UID SEARCH of an envelope field and of
// another header field in a 10,000-message folder over loopback: the
// search blocks are read, never the messages.
func BenchmarkSearchHeader10k(b *testing.B) {
	ts := startServerTB(b)
	const n = 10000
	d := &store.Delivery{Body: []byte("From: Sender <s@example.org>\r\nTo: anna@contoso.test\r\nSubject: a test message\r\n" +
		"X-Department: sales\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n")}
	for range n {
		d.Targets = append(d.Targets, store.Target{Account: "anna", Folder: "INBOX"})
	}
	if _, err := ts.store.Deliver(context.Background(), d); err != nil {
		b.Fatal(err)
	}
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 1<<20)
	r.ReadString('\n')
	fmt.Fprintf(conn, "l LOGIN anna@contoso.test anna-pw\r\ns SELECT INBOX\r\n")
	readUntil(b, r, "s OK")
	for _, q := range []string{"SUBJECT invoice", "HEADER X-Department billing"} {
		b.Run(strings.Fields(q)[0], func(b *testing.B) {
			for range b.N {
				fmt.Fprintf(conn, "q UID SEARCH %s\r\n", q)
				readUntil(b, r, "q OK")
			}
		})
	}
}

// BenchmarkSearchData times what delivery does per body for SEARCH: the
// search block and the text signature of the message BenchmarkAnalyze
// uses.
func BenchmarkSearchData(b *testing.B) {
	body := []byte("From: Sender <s@example.org>\r\nTo: anna@contoso.test\r\nSubject: a test message\r\n" +
		"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64))
	b.ReportAllocs()
	for b.Loop() {
		SearchData(body)
	}
}

// BenchmarkDeliverFanout1000 times one 4 KiB message to 1,000 mailboxes in
// a bbolt store opened as the server opens it (Analyze, SearchData): the
// analysis once, a record per mailbox, the body and its search data once.
func BenchmarkDeliverFanout1000(b *testing.B) {
	s, err := store.Open(context.Background(), store.Options{Path: filepath.Join(b.TempDir(), "mail.db"), Analyze: Analyze, SearchData: SearchData})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	targets := make([]store.Target, 1000)
	for i := range targets {
		targets[i] = store.Target{Account: fmt.Sprint("user", i), Folder: "INBOX", Prefix: []byte(fmt.Sprintf("Delivered-To: user%d@contoso.test\r\n", i))}
	}
	body := func(i int) []byte {
		return []byte(fmt.Sprintf("From: Sender <s@example.org>\r\nTo: all@contoso.test\r\nSubject: message %d\r\n", i) +
			"Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64))
	}
	if _, err := s.Deliver(context.Background(), &store.Delivery{Body: body(-1), Targets: targets}); err != nil {
		b.Fatal(err) // the mailboxes exist before the timing
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Deliver(context.Background(), &store.Delivery{Body: body(i), Targets: targets}); err != nil {
			b.Fatal(err)
		}
	}
}
