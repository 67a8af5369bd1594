package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

func benchBody(i int) []byte {
	body := fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\n\r\n", i)
	for len(body) < 4096 {
		body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n"
	}
	return []byte(body)
}

// BenchmarkDeliverOne is store's BenchmarkDeliverOne on PostgreSQL: 4 KiB
// deliveries to eight mailboxes from 32 concurrent writers, sharing
// transactions (group.go). The test cluster runs with fsync off.
func BenchmarkDeliverOne(b *testing.B) {
	s, err := Open(context.Background(), Options{DSN: pgtest.DB(b, cluster), Analyze: func([]byte) []byte { return make([]byte, 600) }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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
				_, err := s.Deliver(ctx, &store.Delivery{Body: benchBody(w*per + i), Targets: []store.Target{{Account: fmt.Sprint("u", w%8), Folder: "INBOX"}}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkCrossNodePush measures how long a delivery committed through one
// node takes to reach a subscriber on another (the IMAP IDLE push across
// nodes), from the moment Deliver returns; it reports the 99th percentile.
func BenchmarkCrossNodePush(b *testing.B) {
	dsn := pgtest.DB(b, cluster)
	nodes := make([]*Store, 2)
	for i := range nodes {
		s, err := Open(context.Background(), Options{DSN: dsn})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	arrived := make(chan time.Time, 1)
	nodes[1].Subscribe(func(store.Change) { arrived <- time.Now() })
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		if _, err := nodes[0].Deliver(ctx, &store.Delivery{Body: benchBody(i), Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}}); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		lat = append(lat, max(0, (<-arrived).Sub(done)))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkDeliver500 is store's BenchmarkDeliver500 on PostgreSQL: one
// message to 500 mailboxes, one commit (the store's half of a fan-out).
// The test cluster runs with fsync off.
func BenchmarkDeliver500(b *testing.B) {
	s, err := Open(context.Background(), Options{DSN: pgtest.DB(b, cluster), Analyze: func([]byte) []byte { return make([]byte, 600) }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	targets := make([]store.Target, 500)
	for i := range targets {
		targets[i] = store.Target{Account: fmt.Sprint("user", i), Folder: "INBOX", Prefix: []byte(fmt.Sprintf("Delivered-To: user%d@contoso.test\r\n", i))}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Deliver(ctx, &store.Delivery{Body: benchBody(i), Targets: targets}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCrossNodeFanOut: one message through node A to 1,000
// mailboxes; reported is how long after A's commit returned node B's
// subscriber had the last of the 1,000 changes (the notifications are
// taken together and their changes read in one query).
func BenchmarkCrossNodeFanOut(b *testing.B) {
	dsn := pgtest.DB(b, cluster)
	nodes := make([]*Store, 2)
	for i := range nodes {
		s, err := Open(context.Background(), Options{DSN: dsn})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	const mailboxes = 1000
	arrived := make(chan time.Time, mailboxes)
	nodes[1].Subscribe(func(store.Change) { arrived <- time.Now() })
	targets := make([]store.Target, mailboxes)
	for i := range targets {
		targets[i] = store.Target{Account: fmt.Sprint("user", i), Folder: "INBOX"}
	}
	ctx := context.Background()
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		if _, err := nodes[0].Deliver(ctx, &store.Delivery{Body: benchBody(i), Targets: targets}); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		var last time.Time
		for range mailboxes {
			last = <-arrived
		}
		lat = append(lat, max(0, last.Sub(done)))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "last-p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "last-max-ms")
}
