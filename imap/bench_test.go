package imap

import (
	"context"
	"fmt"
	"sync"
	"testing"

	goimap "github.com/emersion/go-imap/v2"

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
	c := ts.dialTB(b, "anna@contoso.test", "anna-pw")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	options := &goimap.FetchOptions{UID: true, Flags: true, Envelope: true, BodyStructure: &goimap.FetchItemBodyStructure{}, RFC822Size: true, InternalDate: true}
	b.ResetTimer()
	for range b.N {
		cmd := c.Fetch(goimap.UIDSet{goimap.UIDRange{Start: 1, Stop: 0}}, options)
		got := 0
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
			}
			got++
		}
		if err := cmd.Close(); err != nil || got != n {
			b.Fatalf("fetched %d: %v", got, err)
		}
	}
}
