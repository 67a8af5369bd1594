package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/term"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/mailfile"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

// errFull stops an import at a full mailbox.
var errFull = errors.New("the mailbox is full")

// cmdImport files a Maildir or an mbox into a mailbox.
func cmdImport(args []string, stdout, stderr io.Writer) int {
	c := newCommand("import", "configuration file", stderr)
	folder := c.fs.String("folder", "", "folder to file an mbox into (default INBOX); for a Maildir, the folder its INBOX becomes, with its subfolders below")
	cfg, code := c.load(args, exactly(2), "usage: postkasse import [-config FILE] [-folder NAME] ADDRESS PATH")
	if cfg == nil {
		return code
	}
	dir, err := directoryFor(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	addr, src := c.fs.Arg(0), c.fs.Arg(1)
	t, err := mailboxOf(dir, addr)
	if err != nil {
		fmt.Fprintln(stderr, "postkasse import:", err)
		return 1
	}
	file, finish, err := importFiler(cfg, addr, t)
	if err != nil {
		fmt.Fprintln(stderr, "postkasse import:", err)
		return 1
	}
	defer finish()
	p := newProgress(stderr)
	err = readSource(src, *folder, func(m *mailfile.Message) error {
		filed, err := file(m)
		if errors.Is(err, errFull) {
			return fmt.Errorf("%s is full (quota %s): stopped at %s; %d messages filed before it", addr, decimalSize(t.quota), m.Source, p.filed)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m.Source, err)
		}
		p.count(filed)
		return nil
	})
	p.end()
	if err != nil {
		fmt.Fprintln(stderr, "postkasse import:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d messages filed into %s, %d already there\n", src, p.filed, addr, p.skipped)
	return 0
}

// readSource reads a Maildir (a directory) or an mbox (a file).
func readSource(src, folder string, fn func(*mailfile.Message) error) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		if folder == "" {
			folder = "INBOX"
		}
		return mailfile.ReadMbox(f, src, folder, fn)
	}
	names, dirs, err := mailfile.MaildirFolders(src)
	if err != nil {
		return err
	}
	for i, name := range names {
		switch {
		case folder != "" && name == "INBOX":
			name = folder
		case folder != "":
			name = folder + mailfile.Delim + name
		}
		if err := mailfile.ReadMaildirFolder(dirs[i], name, fn); err != nil {
			return err
		}
	}
	return nil
}

// importFiler returns how to file a message: through the running server,
// or into the store opened here. finish ends the session.
func importFiler(cfg *config.Config, addr string, t transferTarget) (file func(*mailfile.Message) (bool, error), finish func(), err error) {
	sock, st, err := reachStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	if st != nil {
		file = func(m *mailfile.Message) (bool, error) {
			filed, err := importMessage(context.Background(), st, t, m)
			if errors.Is(err, store.ErrQuota) {
				return false, errFull
			}
			return filed, err
		}
		return file, func() { st.Close() }, nil
	}
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("is the server running? %w", err)
	}
	enc, dec := json.NewEncoder(conn), json.NewDecoder(bufio.NewReader(conn))
	var res transferResult
	if _, err = io.WriteString(conn, "import "+addr+"\n"); err == nil {
		err = dec.Decode(&res)
	}
	if err == nil && res.Error != "" {
		err = errors.New(res.Error)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	file = func(m *mailfile.Message) (bool, error) {
		if err := enc.Encode(transferItem{Folder: m.Folder, Flags: m.Flags, Date: m.Date, Body: m.Body}); err != nil {
			return false, err
		}
		var res transferResult
		if err := dec.Decode(&res); err != nil {
			return false, fmt.Errorf("control socket answer: %w", err)
		}
		switch {
		case res.Quota:
			return false, errFull
		case res.Error != "":
			return false, errors.New(res.Error)
		}
		return res.Filed, nil
	}
	return file, func() { conn.Close() }, nil
}

// progress counts an import and, on a terminal, shows how far it is.
type progress struct {
	w              io.Writer // nil: not a terminal, say nothing
	start, shown   time.Time
	filed, skipped int
}

func newProgress(stderr io.Writer) *progress {
	p := &progress{start: time.Now()}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.w = f
	}
	return p
}

func (p *progress) count(filed bool) {
	if filed {
		p.filed++
	} else {
		p.skipped++
	}
	if p.w != nil && time.Since(p.shown) > 500*time.Millisecond {
		p.shown = time.Now()
		rate := float64(p.filed+p.skipped) / time.Since(p.start).Seconds()
		fmt.Fprintf(p.w, "\r%d filed, %d already there, %.0f messages/s ", p.filed, p.skipped, rate)
	}
}

func (p *progress) end() {
	if p.w != nil && !p.shown.IsZero() {
		fmt.Fprintln(p.w)
	}
}

// cmdExport writes every folder of a mailbox as a Maildir.
func cmdExport(args []string, stdout, stderr io.Writer) int {
	c := newCommand("export", "configuration file", stderr)
	cfg, code := c.load(args, exactly(2), "usage: postkasse export [-config FILE] ADDRESS DIR")
	if cfg == nil {
		return code
	}
	dir, err := directoryFor(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	addr, out := c.fs.Arg(0), c.fs.Arg(1)
	t, err := mailboxOf(dir, addr)
	if err == nil {
		var n int
		n, err = export(cfg, addr, t, out)
		if err == nil {
			fmt.Fprintf(stdout, "%s: %d messages of %s written as a Maildir\n", out, n, addr)
			return 0
		}
	}
	fmt.Fprintln(stderr, "postkasse export:", err)
	return 1
}

func export(cfg *config.Config, addr string, t transferTarget, out string) (int, error) {
	w, err := mailfile.NewMaildirWriter(out)
	if err != nil {
		return 0, err
	}
	n := 0
	write := func(m *mailfile.Message) error {
		n++
		return w.Write(m)
	}
	sock, st, err := reachStore(cfg)
	switch {
	case err != nil:
	case st != nil:
		err = exportMessages(context.Background(), st, t.id, write)
		st.Close()
	default:
		err = exportViaServer(sock, addr, write)
	}
	if err == nil {
		err = w.Close()
	}
	return n, err
}

func exportViaServer(sock, addr string, fn func(*mailfile.Message) error) error {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("is the server running? %w", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "export "+addr+"\n"); err != nil {
		return err
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	for {
		var it transferItem
		if err := dec.Decode(&it); err != nil {
			return fmt.Errorf("export cut short: %w", err)
		}
		if it.Done {
			if it.Error != "" {
				return errors.New(it.Error)
			}
			return nil
		}
		if err := fn(&mailfile.Message{Folder: it.Folder, Flags: it.Flags, Date: it.Date, Body: it.Body, Source: it.Source}); err != nil {
			return err
		}
	}
}

// directoryFor builds the directory of a loaded file.
func directoryFor(cfg *config.Config) (*policy.Directory, error) {
	dir, err := policy.NewDirectory(directoryOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return dir, nil
}
