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
	"path/filepath"
	"time"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/store"
)

// cmdBackup writes a consistent copy of the whole store to a file, through
// the running server or directly, and checks the copy.
func cmdBackup(args []string, stdout, stderr io.Writer) int {
	c := newCommand("backup", "configuration file", stderr)
	cfg, code := c.load(args, exactly(1), "usage: postkasse backup [-config FILE] FILE")
	if cfg == nil {
		return code
	}
	if bboltOnly("backup", cfg, stderr) {
		return 1
	}
	file := c.fs.Arg(0)
	start := time.Now()
	size, err := backupTo(cfg, file)
	if err == nil {
		// A backup that does not restore is no backup: check it now. The
		// bodies' hashes are left to restore: hashing them all would take
		// the CPU the running server needs (the copy comes from a sound
		// store, and bbolt's checks see a damaged file).
		err = store.VerifyFile(context.Background(), file, false)
	}
	if err != nil {
		fmt.Fprintln(stderr, "postkasse backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s, checked (%s)\n", file, mebibytes(size), time.Since(start).Round(time.Millisecond))
	return 0
}

// backupTo writes the snapshot to file (through a temporary file, fsynced,
// then renamed) and returns its size.
func backupTo(cfg *config.Config, file string) (int64, error) {
	tmp := file + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	size, err := snapshotInto(cfg, &syncingWriter{f: f})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err == nil {
		err = syncDir(filepath.Dir(file))
	}
	return size, err
}

// syncEvery is how much of a backup is written between fsyncs.
const syncEvery = 16 << 20

// syncingWriter fsyncs the backup file as it goes. Flushed in one go at
// the end, hundreds of megabytes of dirty pages queue ahead of every
// delivery's fsync on the same disk for seconds; in steps, they don't.
type syncingWriter struct {
	f       *os.File
	pending int
}

func (w *syncingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.pending += n
	if err == nil && w.pending >= syncEvery {
		w.pending = 0
		err = w.f.Sync()
	}
	return n, err
}

// snapshotInto writes a snapshot of the store to w.
func snapshotInto(cfg *config.Config, w io.Writer) (int64, error) {
	sock, st, err := reachStore(cfg)
	if err != nil {
		return 0, err
	}
	if st != nil {
		defer st.Close()
		var n int64
		err := st.Backup(context.Background(), func(size int64, snap io.WriterTo) error {
			var err error
			n, err = snap.WriteTo(w)
			return err
		})
		return n, err
	}
	return backupViaServer(sock, w)
}

// backupViaServer asks the running server for a snapshot: one answer line
// with its size, then the bytes.
func backupViaServer(sock string, w io.Writer) (int64, error) {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("is the server running? %w", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "backup\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return 0, fmt.Errorf("control socket answer: %w", err)
	}
	var ans controlAnswer
	if err := json.Unmarshal(line, &ans); err != nil {
		return 0, fmt.Errorf("control socket answer: %w", err)
	}
	if ans.Error != "" {
		return 0, errors.New(ans.Error)
	}
	n, err := io.CopyN(w, r, ans.Size)
	if err != nil {
		return n, fmt.Errorf("backup cut short after %d of %d bytes: %w", n, ans.Size, err)
	}
	return n, nil
}

// serveBackup streams a snapshot to the control socket's client.
func serveBackup(ctx context.Context, conn net.Conn, target controlTarget, log *slog.Logger) {
	// A large store takes as long as it takes; a client that stops reading
	// for a minute is gone.
	conn.SetDeadline(time.Time{})
	start := time.Now()
	var written int64
	err := target.Backup(ctx, func(size int64, snap io.WriterTo) error {
		head, _ := json.Marshal(controlAnswer{Size: size})
		if _, err := conn.Write(append(head, '\n')); err != nil {
			return err
		}
		var err error
		written, err = snap.WriteTo(&deadlineWriter{conn: conn, idle: time.Minute})
		return err
	})
	if err != nil {
		if written == 0 {
			head, _ := json.Marshal(controlAnswer{Error: err.Error()})
			conn.Write(append(head, '\n'))
		}
		log.Error("backup failed", "err", err)
		return
	}
	log.Info("backup written", "bytes", written, "duration", time.Since(start).Round(time.Millisecond))
}

// deadlineWriter gives every write to conn idle time to complete.
type deadlineWriter struct {
	conn net.Conn
	idle time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.conn.SetWriteDeadline(time.Now().Add(d.idle))
	return d.conn.Write(p)
}

// Backup hands the control socket a snapshot of the store.
func (s *server) Backup(ctx context.Context, write func(size int64, snapshot io.WriterTo) error) error {
	return s.store.Backup(ctx, write)
}

// cmdRestore puts a backup in place of the store, with the server stopped.
func cmdRestore(args []string, stdout, stderr io.Writer) int {
	c := newCommand("restore", "configuration file", stderr)
	cfg, code := c.load(args, exactly(1), "usage: postkasse restore [-config FILE] FILE")
	if cfg == nil {
		return code
	}
	if bboltOnly("restore", cfg, stderr) {
		return 1
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		fmt.Fprintln(stderr, "postkasse restore:", err)
		return 1
	}
	db := storePath(cfg)
	err := store.Restore(context.Background(), db, c.fs.Arg(0))
	if errors.Is(err, store.ErrInUse) {
		fmt.Fprintf(stderr, "postkasse restore: %s is in use: stop the server first (systemctl stop postkasse)\n", db)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "postkasse restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s restored from %s; the store it replaced is %s.old\n", db, c.fs.Arg(0), db)
	return 0
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
