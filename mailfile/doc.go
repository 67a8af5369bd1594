// Package mailfile reads and writes mail kept in files by other mail
// software: Maildir in Dovecot's layout (Maildir++ subfolders, flags in file
// names, keywords in dovecot-keywords) and mbox (mboxrd quoting, Status and
// X-Status flags). `postkasse import` and `export` use it.
//
// It knows files only: no store, no configuration, no protocol.
package mailfile

import (
	"bytes"
	"time"
)

// Message is one message as read from or written to files.
type Message struct {
	Folder string    // "INBOX", or a folder name with "/" between levels
	Flags  []string  // IMAP system flags (`\Seen`) and keywords
	Date   time.Time // internal date
	Body   []byte    // the message, CRLF line endings
	Source string    // where it was read: a file, or an mbox and its line
}

// Delim separates the levels of Message.Folder.
const Delim = "/"

// crlf gives every line a CRLF ending: files in Maildir and mbox end
// lines with LF alone, while the store keeps messages as sent over SMTP.
func crlf(b []byte) []byte {
	n := bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n"))
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
