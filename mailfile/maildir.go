package mailfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Maildir flag letters (the "2," info of a file name) and the IMAP flags
// they stand for, in the ASCII order the names must list them.
var maildirFlags = []struct {
	letter byte
	flag   string
}{
	{'D', `\Draft`}, {'F', `\Flagged`}, {'P', "$Forwarded"}, {'R', `\Answered`}, {'S', `\Seen`}, {'T', `\Deleted`},
}

// maxKeywords is how many keywords a Maildir folder can name: a to z.
const maxKeywords = 26

// MaildirFolders lists the folders of a Maildir in Dovecot's layout: the
// root is INBOX, a directory ".Sub.Folder" is the folder "Sub/Folder". It
// returns folder names and their directories, INBOX first.
func MaildirFolders(root string) (names, dirs []string, err error) {
	if !isMaildir(root) {
		return nil, nil, fmt.Errorf("%s is not a Maildir (no cur and new directories)", root)
	}
	names, dirs = []string{"INBOX"}, []string{root}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || len(n) < 2 || n[0] != '.' || n == ".." || !isMaildir(filepath.Join(root, n)) {
			continue
		}
		var parts []string
		for _, p := range strings.Split(n[1:], ".") {
			d, err := decodeMUTF7(p)
			if err != nil || d == "" {
				return nil, nil, fmt.Errorf("folder directory %q: %w", n, errMUTF7)
			}
			parts = append(parts, d)
		}
		names = append(names, strings.Join(parts, Delim))
		dirs = append(dirs, filepath.Join(root, n))
	}
	return names, dirs, nil
}

func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// ReadMaildirFolder calls fn for every message of one Maildir folder (dir),
// filed as folder: new and cur, in the order of their names (Maildir names
// start with the delivery time). Flags come from the names, keywords
// through dovecot-keywords, the internal date from the file's mtime.
func ReadMaildirFolder(dir, folder string, fn func(*Message) error) error {
	keywords, err := readKeywords(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return err
	}
	var files []string
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(sub, e.Name()))
			}
		}
	}
	slices.SortFunc(files, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	for _, f := range files {
		path := filepath.Join(dir, f)
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		m := &Message{Folder: folder, Flags: flagsOfName(filepath.Base(f), keywords), Date: fi.ModTime(), Body: crlf(body), Source: path}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// flagsOfName reads the flags of a Maildir file name ("...:2,FSa").
func flagsOfName(name string, keywords []string) []string {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		return nil
	}
	var out []string
	for _, c := range []byte(name[i+3:]) {
		switch {
		case c >= 'a' && c <= 'z':
			if k := int(c - 'a'); k < len(keywords) && keywords[k] != "" {
				out = append(out, keywords[k])
			}
		default:
			for _, f := range maildirFlags {
				if f.letter == c {
					out = append(out, f.flag)
				}
			}
		}
	}
	return out
}

// readKeywords reads dovecot-keywords: lines "INDEX NAME". A missing file
// names no keywords.
func readKeywords(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseKeywords(bufio.NewScanner(f))
}

func parseKeywords(sc *bufio.Scanner) ([]string, error) {
	keywords := make([]string, maxKeywords)
	for sc.Scan() {
		idx, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		n, err := strconv.Atoi(idx)
		name = strings.TrimSpace(name)
		if !ok || err != nil || n < 0 || n >= maxKeywords || !validKeyword(name) {
			continue // not a line Dovecot would write: ignore it, as Dovecot does
		}
		keywords[n] = name
	}
	return keywords, sc.Err()
}

// validKeyword tells whether name can be an IMAP keyword (an atom, RFC
// 3501 §9): no spaces, controls or the characters IMAP reserves.
func validKeyword(name string) bool {
	if name == "" || strings.HasPrefix(name, `\`) {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`(){%*"\]`, r) {
			return false
		}
	}
	return true
}
