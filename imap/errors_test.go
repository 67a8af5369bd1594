package imap

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// TestMapErrorUnavailable: a store that cannot be reached is NO
// [UNAVAILABLE], a reply that tells the client to try again, not an
// internal error under a reference.
func TestMapErrorUnavailable(t *testing.T) {
	t.Parallel()
	err := mapError(slog.New(slog.DiscardHandler), fmt.Errorf("select: %w", fmt.Errorf("%w: dial error", store.ErrUnavailable)))
	var imapErr *goimap.Error
	if !errors.As(err, &imapErr) || imapErr.Type != goimap.StatusResponseTypeNo || imapErr.Code != goimap.ResponseCodeUnavailable {
		t.Fatalf("mapError = %v, want NO [UNAVAILABLE]", err)
	}
	if err := mapError(slog.New(slog.DiscardHandler), errors.New("disk on fire")); !errors.As(err, &imapErr) || imapErr.Code != goimap.ResponseCodeServerBug {
		t.Fatalf("an unknown error: %v, want NO [SERVERBUG]", err)
	}
}
