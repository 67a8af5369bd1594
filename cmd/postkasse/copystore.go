package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres"
)

// copySource hands every record of a store to fn, in store.Record's
// order: store.Export for a bbolt file, postgres.Export for a database.
type copySource func(ctx context.Context, fn func(store.Record) error) error

// copyTarget stores the records of a copy and makes them a store at
// Commit, or leaves nothing at Abort: store.Loader or postgres.Loader.
type copyTarget interface {
	Put(ctx context.Context, r store.Record) error
	Commit(ctx context.Context) error
	Abort()
}

// bboltPrefix marks a -to that names a bbolt file rather than a DSN.
const bboltPrefix = "bbolt:"

const copyStoreUsage = "usage: postkasse copy-store [-config FILE] -to DSN|bbolt:PATH"

// cmdCopyStore copies the whole store the file's [store] names into a new
// store: a PostgreSQL database (-to DSN) or a bbolt file (-to bbolt:PATH),
// with the server stopped (SPEC §9, §13). The target must be empty; a copy
// that fails leaves it as it was.
func cmdCopyStore(args []string, stdout, stderr io.Writer) int {
	c := newCommand("copy-store", "configuration file (for the store to copy)", stderr)
	to := c.fs.String("to", "", "where to copy the store: a PostgreSQL DSN, or bbolt:PATH for a new bbolt file")
	cfg, code := c.load(args, exactly(0), copyStoreUsage)
	if cfg == nil {
		return code
	}
	if *to == "" {
		fmt.Fprintln(stderr, copyStoreUsage)
		return 2
	}
	where, err := copyWhere(*to)
	if err != nil {
		fmt.Fprintln(stderr, "postkasse copy-store: -to", err)
		return 2
	}
	sock := filepath.Join(cfg.DataDir, controlSocketName)
	if conn, err := net.DialTimeout("unix", sock, 2*time.Second); err == nil {
		conn.Close()
		fmt.Fprintf(stderr, "postkasse copy-store: the server is running (it answers on %s): stop it first (systemctl stop postkasse)\n", sock)
		return 1
	}
	start := time.Now()
	p := newCopyProgress(stderr)
	err = copyStore(context.Background(), cfg, *to, p)
	p.end()
	switch {
	case errors.Is(err, store.ErrInUse):
		fmt.Fprintf(stderr, "postkasse copy-store: %v\nstop every postkasse server using the store (systemctl stop postkasse) and try again\n", err)
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "postkasse copy-store:", err)
		return 1
	}
	fmt.Fprintf(stdout, "copied %s to %s: %s (%s)\n", describeStore(cfg), where, p.summary(), time.Since(start).Round(time.Millisecond))
	return 0
}

// copyWhere says where -to points, without a password; an error for a
// DSN pgx cannot read.
func copyWhere(to string) (string, error) {
	if path, ok := strings.CutPrefix(to, bboltPrefix); ok {
		if path == "" {
			return "", errors.New("bbolt: needs the path of the new file")
		}
		return "bbolt " + path, nil
	}
	where, err := config.DSNWhere(to)
	if err != nil {
		return "", err
	}
	return "postgres " + where, nil
}

// copyStore runs the copy: the target is made (and checked empty) first,
// then the source streams into it.
func copyStore(ctx context.Context, cfg *config.Config, to string, p *copyProgress) error {
	var target copyTarget
	var err error
	if path, ok := strings.CutPrefix(to, bboltPrefix); ok {
		target, err = store.NewLoader(ctx, path)
	} else {
		target, err = postgres.NewLoader(ctx, to)
	}
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	source := copySource(func(ctx context.Context, fn func(store.Record) error) error {
		return store.Export(ctx, storePath(cfg), fn)
	})
	if cfg.Store.Backend == config.BackendPostgres {
		source = func(ctx context.Context, fn func(store.Record) error) error {
			return postgres.Export(ctx, cfg.Store.DSN, fn)
		}
	}
	err = source(ctx, func(r store.Record) error {
		p.note(r)
		return target.Put(ctx, r)
	})
	if err != nil {
		target.Abort()
		return err
	}
	p.finishing()
	return target.Commit(ctx)
}

// copyProgress counts what a copy carries and, on a terminal, shows how
// far it is.
type copyProgress struct {
	w                                 io.Writer // nil: not a terminal, say nothing
	shown                             time.Time
	account                           string
	accounts, folders, messages, jobs int
	bodies                            int
	bodyBytes                         int64
	other                             int
}

func newCopyProgress(stderr io.Writer) *copyProgress {
	p := &copyProgress{}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.w = f
	}
	return p
}

func (p *copyProgress) note(r store.Record) {
	switch r := r.(type) {
	case *store.BodyRecord:
		p.bodies++
		p.bodyBytes += int64(len(r.Body))
	case *store.AccountRecord:
		p.accounts++
		p.account = r.ID
	case *store.FolderRecord:
		p.folders++
	case *store.MessageRecord:
		p.messages++
	case *store.QueueRecord:
		p.jobs++
	default:
		p.other++
	}
	if p.w != nil && time.Since(p.shown) > 200*time.Millisecond {
		p.shown = time.Now()
		fmt.Fprintf(p.w, "\r\033[Kcopying: %s; now %s", p.summary(), p.account)
	}
}

// finishing says that the records are all in and the target is being
// counted, indexed and verified, which takes a while on a large store.
func (p *copyProgress) finishing() {
	if p.w != nil {
		p.shown = time.Now()
		fmt.Fprintf(p.w, "\r\033[Kcopied: %s; checking the copy", p.summary())
	}
}

func (p *copyProgress) end() {
	if p.w != nil && !p.shown.IsZero() {
		fmt.Fprintln(p.w)
	}
}

func (p *copyProgress) summary() string {
	return fmt.Sprintf("%d accounts, %d folders, %d messages, %d bodies (%s), %d queued, %d other records",
		p.accounts, p.folders, p.messages, p.bodies, mebibytes(p.bodyBytes), p.jobs, p.other)
}
