package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"postkasse.dev/postkasse/store"
)

// The control socket lets `postkasse queue` talk to a running server: the
// store's file is locked by the server, so the command asks it instead.
// One request line, one JSON answer.

const controlSocketName = "control.sock"

// controlTarget is what the control socket needs from the running server.
type controlTarget interface {
	QueueList(ctx context.Context) ([]store.QueuedMessage, error)
	QueueRemove(ctx context.Context, id uint64) error
	Flush(ctx context.Context) error
	Accounts(ctx context.Context) ([]store.AccountStats, error)
	Purge(ctx context.Context, id string) error
	Backup(ctx context.Context, write func(size int64, snapshot io.WriterTo) error) error
	transferStore(addr string) (storeBackend, transferTarget, error)
}

// controlAnswer is the socket's reply.
type controlAnswer struct {
	Error    string                `json:"error,omitempty"`
	Messages []store.QueuedMessage `json:"messages,omitempty"`
	Accounts []store.AccountStats  `json:"accounts,omitempty"`
	// Size is the length of the raw data that follows the answer's line
	// (a backup).
	Size int64 `json:"size,omitempty"`
}

// serveControl answers requests on the control socket until ctx ends.
func serveControl(ctx context.Context, ln net.Listener, qc controlTarget, log *slog.Logger) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				log.Warn("control socket", "err", err)
			}
			return
		}
		go func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(time.Minute))
			// The request line fits the reader's buffer; an import's
			// messages follow it through the same reader.
			br := bufio.NewReaderSize(conn, 4096)
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			args := strings.Fields(string(line))
			switch {
			case len(args) == 1 && args[0] == "backup":
				serveBackup(ctx, conn, qc, log)
				return
			case len(args) == 2 && args[0] == "import":
				serveImport(ctx, conn, br, qc, args[1], log)
				return
			case len(args) == 2 && args[0] == "export":
				serveExport(ctx, conn, qc, args[1], log)
				return
			}
			ans := handleControl(ctx, args, qc)
			json.NewEncoder(conn).Encode(ans)
		}()
	}
}

func handleControl(ctx context.Context, args []string, qc controlTarget) controlAnswer {
	fail := func(err error) controlAnswer { return controlAnswer{Error: err.Error()} }
	switch {
	case len(args) == 2 && args[0] == "queue" && args[1] == "list":
		msgs, err := qc.QueueList(ctx)
		if err != nil {
			return fail(err)
		}
		return controlAnswer{Messages: msgs}
	case len(args) == 2 && args[0] == "queue" && args[1] == "flush":
		if err := qc.Flush(ctx); err != nil {
			return fail(err)
		}
		return controlAnswer{}
	case len(args) == 3 && args[0] == "queue" && args[1] == "delete":
		id, err := strconv.ParseUint(args[2], 10, 64)
		if err != nil {
			return fail(fmt.Errorf("bad queue id %q", args[2]))
		}
		err = qc.QueueRemove(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fail(fmt.Errorf("no message with id %d in the queue: it may have been delivered, bounced or deleted already (see postkasse queue list)", id))
		}
		if err != nil {
			return fail(err)
		}
		return controlAnswer{}
	case len(args) == 1 && args[0] == "usage":
		accounts, err := qc.Accounts(ctx)
		if err != nil {
			return fail(err)
		}
		return controlAnswer{Accounts: accounts}
	case len(args) == 2 && args[0] == "purge":
		if err := qc.Purge(ctx, args[1]); err != nil {
			return fail(err)
		}
		return controlAnswer{}
	}
	return fail(fmt.Errorf("unknown request %q", strings.Join(args, " ")))
}

// listenControl opens the control socket in the data directory, readable
// by the owner only.
func listenControl(path string) (net.Listener, error) {
	os.Remove(path) // a stale socket from a previous run
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// askControl sends one request to a running server.
func askControl(path, request string) (controlAnswer, error) {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return controlAnswer{}, fmt.Errorf("is the server running? %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(conn, request+"\n"); err != nil {
		return controlAnswer{}, err
	}
	var ans controlAnswer
	if err := json.NewDecoder(conn).Decode(&ans); err != nil {
		return controlAnswer{}, fmt.Errorf("control socket answer: %w", err)
	}
	if ans.Error != "" {
		return ans, errors.New(ans.Error)
	}
	return ans, nil
}
