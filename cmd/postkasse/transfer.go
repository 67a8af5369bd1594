package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"postkasse.dev/postkasse/mailfile"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

// Import and export through the control socket: after the request line,
// import sends one transferItem per JSON line and reads one
// transferResult per item; export reads transferItems until one with Done.

// transferItem is one message on the control socket.
type transferItem struct {
	Folder string    `json:"folder,omitempty"`
	Flags  []string  `json:"flags,omitempty"`
	Date   time.Time `json:"date"`
	Body   []byte    `json:"body,omitempty"`
	Source string    `json:"source,omitempty"`
	Done   bool      `json:"done,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// transferResult answers one imported item.
type transferResult struct {
	Filed bool   `json:"filed"`
	Quota bool   `json:"quota,omitempty"` // the mailbox is full
	Error string `json:"error,omitempty"`
}

// specialUse gives the folders every mailbox has their attribute when an
// import creates them.
var specialUse = map[string]string{
	"Sent": `\Sent`, "Drafts": `\Drafts`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`,
}

// transferTarget is the mailbox an import or export works on.
type transferTarget struct {
	id    string
	quota int64 // bytes; 0: unlimited
}

// mailboxOf finds the mailbox (user or shared) an address names.
func mailboxOf(dir *policy.Directory, addr string) (transferTarget, error) {
	t, ok := dir.Resolve(addr)
	if ok {
		if mb, ok := dir.Mailbox(t.ID); ok {
			return transferTarget{id: mb.ID, quota: mb.Quota}, nil
		}
	}
	return transferTarget{}, fmt.Errorf("%s is not the address of a user or shared mailbox", addr)
}

// importMessage files one message, once: the digest covers the folder and
// the bytes, so a second run of the same import files nothing twice.
func importMessage(ctx context.Context, st storeBackend, t transferTarget, m *mailfile.Message) (bool, error) {
	h := sha256.New()
	io.WriteString(h, m.Folder+"\x00")
	h.Write(m.Body)
	target := store.Target{Account: t.id, Folder: m.Folder, SpecialUse: specialUse[m.Folder], Flags: m.Flags, Quota: t.quota}
	return st.Import(ctx, target, h.Sum(nil), m.Body, m.Date)
}

// exportMessages calls fn for every message of a mailbox, folder by folder,
// with the flags the mailbox itself sees.
func exportMessages(ctx context.Context, st storeBackend, id string, fn func(*mailfile.Message) error) error {
	folders, err := st.Folders(ctx, id)
	if err != nil {
		return err
	}
	acc := store.Access{Account: id, Viewer: id}
	for _, f := range folders {
		view, err := st.Select(ctx, acc, f.Name, false)
		if err != nil {
			return fmt.Errorf("folder %s: %w", f.Name, err)
		}
		err = st.Messages(ctx, acc, f.ID, view.UIDs, func(info *store.MessageInfo) error {
			body, err := st.Body(ctx, acc, f.ID, info.UID)
			if errors.Is(err, store.ErrNotFound) {
				return nil // expunged meanwhile
			}
			if err != nil {
				return err
			}
			return fn(&mailfile.Message{Folder: f.Name, Flags: info.Flags, Date: info.InternalDate, Body: body,
				Source: fmt.Sprintf("%s UID %d", f.Name, info.UID)})
		})
		if err != nil {
			return fmt.Errorf("folder %s: %w", f.Name, err)
		}
	}
	return nil
}

// transferStore is what the control socket needs for import and export:
// the store and the mailbox of an address in the running configuration.
func (s *server) transferStore(addr string) (storeBackend, transferTarget, error) {
	t, err := mailboxOf(s.dir.Load(), addr)
	return s.store, t, err
}

// serveImport files the items a client sends, answering each.
func serveImport(ctx context.Context, conn net.Conn, br *bufio.Reader, target controlTarget, addr string, log *slog.Logger) {
	conn.SetDeadline(time.Time{})
	enc := json.NewEncoder(conn)
	st, t, err := target.transferStore(addr)
	if err != nil {
		enc.Encode(transferResult{Error: err.Error()})
		return
	}
	enc.Encode(transferResult{})
	dec := json.NewDecoder(br)
	filed, skipped := 0, 0
	for {
		conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		var it transferItem
		if err := dec.Decode(&it); err != nil {
			break // the client is done (or gone)
		}
		ok, err := importMessage(ctx, st, t, &mailfile.Message{Folder: it.Folder, Flags: it.Flags, Date: it.Date, Body: it.Body})
		res := transferResult{Filed: ok, Quota: errors.Is(err, store.ErrQuota)}
		if err != nil {
			res.Error = err.Error()
		}
		if ok {
			filed++
		} else if err == nil {
			skipped++
		}
		if enc.Encode(res) != nil {
			break
		}
	}
	log.Info("import", "mailbox", t.id, "filed", filed, "already_there", skipped)
}

// serveExport sends every message of a mailbox, then an item with Done.
func serveExport(ctx context.Context, conn net.Conn, target controlTarget, addr string, log *slog.Logger) {
	conn.SetDeadline(time.Time{})
	w := bufio.NewWriter(&deadlineWriter{conn: conn, idle: time.Minute})
	enc := json.NewEncoder(w)
	st, t, err := target.transferStore(addr)
	n := 0
	if err == nil {
		err = exportMessages(ctx, st, t.id, func(m *mailfile.Message) error {
			n++
			return enc.Encode(transferItem{Folder: m.Folder, Flags: m.Flags, Date: m.Date, Body: m.Body, Source: m.Source})
		})
	}
	end := transferItem{Done: true}
	if err != nil {
		end.Error = err.Error()
		log.Error("export failed", "mailbox", t.id, "err", err)
	} else {
		log.Info("export", "mailbox", t.id, "messages", n)
	}
	enc.Encode(end)
	w.Flush()
}
