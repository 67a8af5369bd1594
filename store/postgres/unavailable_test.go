package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"postkasse.dev/postkasse/store"
)

// TestUnavailable: errors that say the database is away become
// store.ErrUnavailable; errors of the statement itself do not.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{fmt.Errorf("commit: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "dial", Net: "unix", Err: errors.New("connect: no such file or directory")}, true},
		{&pgconn.PgError{Code: "23505", Message: "duplicate key value"}, false},
		{&pgconn.PgError{Code: "40001"}, false},
		{store.ErrQuota, false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		got := unavailable(tt.err)
		if errors.Is(got, store.ErrUnavailable) != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("unavailable(%v) = %v, want ErrUnavailable %v and the error kept", tt.err, got, tt.want)
		}
	}
	if unavailable(nil) != nil {
		t.Error("unavailable(nil) is not nil")
	}
}
