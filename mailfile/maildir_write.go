package mailfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// MaildirWriter writes messages into a new Maildir in Dovecot's layout,
// which Dovecot and mutt read: INBOX at the root, other folders as
// ".Sub.Folder", flags in the file names, keywords in dovecot-keywords,
// the internal date as the file's mtime. Bodies are written as given.
type MaildirWriter struct {
	root     string
	seq      int
	keywords map[string][]string // folder directory -> keywords by letter
}

// NewMaildirWriter makes a Maildir at root, which must not exist or be
// empty: writing into an existing Maildir would mix two mailboxes.
func NewMaildirWriter(root string) (*MaildirWriter, error) {
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: export into a new directory", root)
	}
	w := &MaildirWriter{root: root, keywords: map[string][]string{root: nil}}
	return w, w.makeFolder(root, false)
}

func (w *MaildirWriter) makeFolder(dir string, sub bool) error {
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	if sub {
		// Maildir++: marks a subfolder.
		return os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
	}
	return nil
}

// folderDir is the directory of a folder, made on first use.
func (w *MaildirWriter) folderDir(folder string) (string, error) {
	if strings.EqualFold(folder, "INBOX") {
		return w.root, nil
	}
	var parts []string
	for _, p := range strings.Split(folder, Delim) {
		parts = append(parts, encodeMUTF7(p))
	}
	dir := filepath.Join(w.root, "."+strings.Join(parts, "."))
	if _, ok := w.keywords[dir]; !ok {
		if err := w.makeFolder(dir, true); err != nil {
			return "", err
		}
		w.keywords[dir] = nil
	}
	return dir, nil
}

// Write writes one message into its folder's cur directory, through tmp.
func (w *MaildirWriter) Write(m *Message) error {
	dir, err := w.folderDir(m.Folder)
	if err != nil {
		return err
	}
	info, err := w.info(dir, m.Flags)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Source, err)
	}
	w.seq++
	name := fmt.Sprintf("%d.M%dP%d.postkasse,S=%d:2,%s", m.Date.Unix(), w.seq, os.Getpid(), len(m.Body), info)
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, m.Body, 0o600); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, m.Date, m.Date); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "cur", name))
}

// info spells flags as Maildir letters, keywords as a to z by the
// folder's dovecot-keywords.
func (w *MaildirWriter) info(dir string, flags []string) (string, error) {
	var letters []byte
	for _, f := range flags {
		if i := slices.IndexFunc(maildirFlags, func(mf struct {
			letter byte
			flag   string
		}) bool {
			return strings.EqualFold(mf.flag, f)
		}); i >= 0 {
			letters = append(letters, maildirFlags[i].letter)
			continue
		}
		if strings.HasPrefix(f, `\`) {
			continue // \Recent and the like: not kept in Maildir
		}
		kws := w.keywords[dir]
		k := slices.Index(kws, f)
		if k < 0 {
			if len(kws) == maxKeywords {
				return "", fmt.Errorf("more than %d keywords in one folder: %s left out", maxKeywords, f)
			}
			k = len(kws)
			w.keywords[dir] = append(kws, f)
		}
		letters = append(letters, byte('a'+k))
	}
	slices.Sort(letters)
	return string(letters), nil
}

// Close writes each folder's dovecot-keywords.
func (w *MaildirWriter) Close() error {
	for dir, kws := range w.keywords {
		if len(kws) == 0 {
			continue
		}
		var b strings.Builder
		for i, k := range kws {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
		if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte(b.String()), 0o600); err != nil {
			return err
		}
	}
	return nil
}
