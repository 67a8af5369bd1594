package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"postkasse.dev/postkasse/store"
)

// unavailable marks an error that says the database cannot be reached,
// or is shutting down or starting up, as store.ErrUnavailable, so the
// protocols answer "try again later" (SMTP 451, IMAP NO [UNAVAILABLE])
// instead of reporting an internal error; other errors pass unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || !connectionTrouble(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// connectionTrouble tells whether err is about the connection to the
// database rather than about the statement.
func connectionTrouble(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-03: the server is
		// shutting down or not yet accepting; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// defaultConnectTimeout bounds connecting to the database unless the DSN
// says otherwise (connect_timeout): pgx would wait for the operating
// system, minutes, for a server that does not answer.
const defaultConnectTimeout = 10 * time.Second

// bound applies Options.TxTimeout to ctx. The returned function turns the
// error of a transaction that ran out of that time (and not of the
// caller's own) into store.ErrUnavailable.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc, func(error) error) {
	if s.txTimeout <= 0 {
		return ctx, func() {}, func(err error) error { return err }
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.txTimeout)
	return ctx, cancel, func(err error) error {
		if err == nil || errors.Is(err, store.ErrUnavailable) || ctx.Err() == nil || parent.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: no answer from the database within %v: %w", store.ErrUnavailable, s.txTimeout, err)
	}
}

// cutOff makes the statements of tx fail once ctx, the transaction's
// bound, ends, and returns the function that stops watching. The
// statements run under their callers' contexts, which know nothing of
// the bound, and pgx waits on a silent database for as long as those
// last; a read deadline in the past ends the wait, and pgx closes the
// connection.
func cutOff(ctx context.Context, tx pgx.Tx) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		tx.Conn().PgConn().Conn().SetDeadline(time.Now())
	})
}

// reachability logs when the database stops answering and when it answers
// again: one line each way, not one per refused command.
type reachability struct {
	down atomic.Bool // the last transaction found the database unavailable
	mu   sync.Mutex
	lost time.Time // when it went
}

// note records the outcome of a transaction.
func (r *reachability) note(s *Store, err error) {
	down := errors.Is(err, store.ErrUnavailable)
	if down == r.down.Load() || !down && err != nil {
		// No change, or the database answered with an error of the
		// statement's own, which says nothing about its coming back.
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case down && !r.down.Load():
		r.lost = time.Now()
		r.down.Store(true)
		s.log.Warn("database unavailable: mail is refused with try-again-later replies until it is back", "err", err)
	case !down && r.down.Load():
		r.down.Store(false)
		s.log.Info("database available again", "after", time.Since(r.lost).Round(time.Millisecond))
	}
}
