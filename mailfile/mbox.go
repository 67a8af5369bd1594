package mailfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MaxMboxMessage bounds one message read from an mbox, so a file that is
// not an mbox cannot take all memory.
const MaxMboxMessage = 1 << 30

// mboxMetaHeaders are header fields that mbox writers (mutt, Dovecot) add
// to keep state; they are read for flags and not filed with the message.
var mboxMetaHeaders = []string{"status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase", "content-length", "lines"}

// ReadMbox calls fn for every message of an mbox, filed as folder. A line
// "From " starts a message; lines ">From ", ">>From " and so on lose one
// ">" (mboxrd). A message whose Content-Length header is right (mutt
// writes one and then leaves "From " lines in the body as they are) is
// read by its length instead (mboxcl2). Flags come from Status (R: \Seen)
// and X-Status (A: \Answered, F: \Flagged, T: \Draft, D: \Deleted),
// keywords from Dovecot's X-Keywords, the internal date from the From_
// line.
func ReadMbox(r io.Reader, name, folder string, fn func(*Message) error) error {
	mr := &mboxReader{br: bufio.NewReaderSize(r, 64<<10), name: name}
	var cur *mboxMessage
	flush := func() error {
		if cur == nil {
			return nil
		}
		m := cur.message(folder)
		cur = nil
		return fn(m)
	}
	for {
		b, err := mr.line()
		if len(b) > 0 {
			switch {
			case bytes.HasPrefix(b, []byte("From ")):
				if ferr := flush(); ferr != nil {
					return ferr
				}
				cur = &mboxMessage{date: fromLineDate(b), source: fmt.Sprintf("%s:%d", name, mr.n), length: -1}
			case cur == nil:
				if len(bytes.TrimSpace(b)) > 0 {
					return fmt.Errorf("%s:%d: not an mbox: the file does not start with a From line", name, mr.n)
				}
			default:
				if cur.body.Len()+len(b) > MaxMboxMessage {
					return fmt.Errorf("%s: message larger than %d bytes", cur.source, MaxMboxMessage)
				}
				headerEnd := !cur.inBody
				cur.add(b)
				if headerEnd && cur.inBody && cur.length >= 0 {
					if err := mr.byLength(cur); err != nil {
						return err
					}
				}
			}
		}
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return err
		}
	}
}

// mboxReader gives the lines of an mbox, and bodies by their length.
type mboxReader struct {
	br      *bufio.Reader
	name    string
	n       int    // lines read
	pending []byte // bytes read ahead that turned out to be lines after all
}

func (r *mboxReader) line() ([]byte, error) {
	var head []byte
	if len(r.pending) > 0 {
		if i := bytes.IndexByte(r.pending, '\n') + 1; i > 0 {
			b := r.pending[:i]
			r.pending = r.pending[i:]
			r.n++
			return b, nil
		}
		// A line begun in the bytes read ahead ends in the file.
		head, r.pending = r.pending, nil
	}
	b, err := r.br.ReadBytes('\n')
	b = append(head, b...)
	if len(b) > 0 {
		r.n++
	}
	return b, err
}

// byLength reads m's body by its Content-Length when what follows it is
// the end of the file or the next From_ line (after an empty line or
// not); otherwise the bytes are read as lines, as if there were no
// Content-Length.
func (r *mboxReader) byLength(m *mboxMessage) error {
	if len(r.pending) > 0 || m.length > MaxMboxMessage {
		return nil
	}
	body := make([]byte, m.length)
	n, err := io.ReadFull(r.br, body)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return err
	}
	body = body[:n]
	next, _ := r.br.Peek(6)
	if n == int(m.length) && (len(next) == 0 || bytes.HasPrefix(next, []byte("From ")) || bytes.HasPrefix(next, []byte("\nFrom ")) ||
		bytes.Equal(next, []byte("\n")) || bytes.HasPrefix(next, []byte("\r\nFrom "))) {
		m.body.Write(body)
		m.exact = true
		r.n += bytes.Count(body, []byte("\n"))
		return nil
	}
	r.pending = body
	return nil
}

// mboxMessage is a message being read.
type mboxMessage struct {
	body     bytes.Buffer
	inBody   bool
	skipping bool // inside a meta header field, continuation lines too
	flags    []string
	date     time.Time
	source   string
	length   int64 // Content-Length; -1 without one
	exact    bool  // the body was read by its length
}

func (m *mboxMessage) add(line []byte) {
	if m.exact {
		return // the empty line between messages, after a body read by length
	}
	if !m.inBody {
		text := strings.TrimRight(string(line), "\r\n")
		switch {
		case text == "":
			m.inBody = true
		case (text[0] == ' ' || text[0] == '\t') && m.skipping:
			return
		default:
			m.skipping = false
			if name, value, ok := strings.Cut(text, ":"); ok && isMeta(name) {
				m.skipping = true
				m.readMeta(strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value))
				return
			}
		}
	}
	// mboxrd: one ">" less before "From ".
	if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
		line = line[1:]
	}
	m.body.Write(line)
}

func isMeta(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, h := range mboxMetaHeaders {
		if name == h {
			return true
		}
	}
	return false
}

func (m *mboxMessage) readMeta(name, value string) {
	letters := map[string]map[rune]string{
		"status":   {'R': `\Seen`},
		"x-status": {'A': `\Answered`, 'F': `\Flagged`, 'T': `\Draft`, 'D': `\Deleted`},
	}
	if name == "content-length" {
		if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 {
			m.length = n
		}
		return
	}
	if name == "x-keywords" {
		for _, k := range strings.Fields(strings.ReplaceAll(value, ",", " ")) {
			if validKeyword(k) {
				m.flags = append(m.flags, k)
			}
		}
		return
	}
	for _, c := range value {
		if f, ok := letters[name][c]; ok {
			m.flags = append(m.flags, f)
		}
	}
}

// message ends the message: the empty line an mbox writer puts between
// messages is not part of it.
func (m *mboxMessage) message(folder string) *Message {
	b := m.body.Bytes()
	switch {
	case m.exact: // the length was the body's, without the empty line
	case bytes.HasSuffix(b, []byte("\n\n")):
		b = b[:len(b)-1]
	case bytes.HasSuffix(b, []byte("\r\n\r\n")):
		b = b[:len(b)-2]
	}
	return &Message{Folder: folder, Flags: m.flags, Date: m.date, Body: crlf(b), Source: m.source}
}

// fromLineDate reads the date of a From_ line ("From sender Thu Dec  4
// 18:28:35 2026", in the writer's local time); zero when there is none.
func fromLineDate(line []byte) time.Time {
	fields := strings.Fields(string(line))
	if len(fields) < 3 {
		return time.Time{}
	}
	rest := strings.Join(fields[2:], " ")
	for _, layout := range []string{"Mon Jan 2 15:04:05 2006", "Mon Jan 2 15:04:05 2006 -0700", "Mon Jan 2 15:04:05 MST 2006", "Mon Jan 2 15:04 2006"} {
		if t, err := time.ParseInLocation(layout, rest, time.Local); err == nil {
			return t
		}
	}
	return time.Time{}
}
