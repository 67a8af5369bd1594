package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "mail.db"), Analyze: func(body []byte) []byte { return make([]byte, 600) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchBody(i int) []byte {
	body := fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\n\r\n", i)
	for len(body) < 4096 {
		body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n"
	}
	return []byte(body)
}

// BenchmarkDeliverOne measures 4 KiB deliveries to one mailbox from 32
// concurrent writers (the SMTP ingress pattern): commits are shared.
func BenchmarkDeliverOne(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.SetBytes(4096)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + 31) / 32
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				_, err := s.Deliver(ctx, &Delivery{Body: benchBody(w*per + i), Targets: []Target{{Account: fmt.Sprint("u", w%8), Folder: "INBOX"}}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkDeliver500 measures one message to 500 mailboxes.
func BenchmarkDeliver500(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	targets := make([]Target, 500)
	for i := range targets {
		targets[i] = Target{Account: fmt.Sprint("user", i), Folder: "INBOX", Prefix: []byte(fmt.Sprintf("Delivered-To: user%d@contoso.test\r\n", i))}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Deliver(ctx, &Delivery{Body: benchBody(i), Targets: targets}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessages10k reads the metadata (flags, size, date, cached
// envelope) of a 10,000-message folder: the store's half of UID FETCH 1:*.
func BenchmarkMessages10k(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const n = 10000
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				s.Deliver(ctx, &Delivery{Body: benchBody(i), Targets: []Target{{Account: "big", Folder: "INBOX"}}})
			}
		}()
	}
	wg.Wait()
	acc := Access{Account: "big", Viewer: "big"}
	b.ResetTimer()
	for range b.N {
		view, err := s.Select(ctx, acc, "INBOX", false)
		if err != nil || len(view.UIDs) != n {
			b.Fatalf("select: %d uids, %v", len(view.UIDs), err)
		}
		count := 0
		err = s.Messages(ctx, acc, view.Info.ID, view.UIDs, func(m *MessageInfo) error { count++; return nil })
		if err != nil || count != n {
			b.Fatalf("messages: %d, %v", count, err)
		}
	}
}
