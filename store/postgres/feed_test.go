package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDeliverAllGivesUpItsTurn: a write that committed delivers its
// changes only while its context lasts, even when the listener holds the
// feed waiting on a silent database (then the listener delivers them).
func TestDeliverAllGivesUpItsTurn(t *testing.T) {
	f := newFeed(nil, slog.New(slog.DiscardHandler), time.Second, time.Second)
	f.turn <- struct{}{} // the listener's, stuck
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.deliverAll(ctx, []note{{k: folderKey{"anna", 1}, seq: 1, token: 1}}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("deliverAll with the feed held: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deliverAll waits for the feed beyond its context")
	}
}

// FuzzParsePayload: any notification payload is parsed or refused without
// a panic, and a parsed one keeps its account whole.
func FuzzParsePayload(f *testing.F) {
	f.Add("1 2 3 anna")
	f.Add("18446744073709551615 7 9223372036854775807 a b c")
	f.Add("x 1 2 anna")
	f.Add("")
	f.Fuzz(func(t *testing.T, p string) {
		k, _, _, err := parsePayload(p)
		if err == nil && !strings.HasSuffix(p, " "+k.account) {
			t.Fatalf("%q parsed with account %q", p, k.account)
		}
	})
}
