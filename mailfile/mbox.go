package mailfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxMboxMessage bounds one message read from an mbox, so a file that is
// not an mbox cannot take all memory.
const MaxMboxMessage = 1 << 30

// mboxMetaHeaders are header fields that mbox writers (mutt, Dovecot) add
// to keep state; they are read for flags and not filed with the message.
var mboxMetaHeaders = []string{"status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase", "content-length"}

// ReadMbox calls fn for every message of an mbox, filed as folder. A line
// "From " starts a message; lines ">From ", ">>From " and so on lose one
// ">" (mboxrd). Flags come from Status (R: \Seen) and X-Status (A:
// \Answered, F: \Flagged, T: \Draft, D: \Deleted), keywords from Dovecot's
// X-Keywords, the internal date from the From_ line.
func ReadMbox(r io.Reader, name, folder string, fn func(*Message) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur *mboxMessage
	line := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		m := cur.message(folder)
		cur = nil
		return fn(m)
	}
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			line++
			switch {
			case bytes.HasPrefix(b, []byte("From ")):
				if ferr := flush(); ferr != nil {
					return ferr
				}
				cur = &mboxMessage{date: fromLineDate(b), source: fmt.Sprintf("%s:%d", name, line)}
			case cur == nil:
				if len(bytes.TrimSpace(b)) > 0 {
					return fmt.Errorf("%s:%d: not an mbox: the file does not start with a From line", name, line)
				}
			default:
				if cur.body.Len()+len(b) > MaxMboxMessage {
					return fmt.Errorf("%s: message larger than %d bytes", cur.source, MaxMboxMessage)
				}
				cur.add(b)
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

// mboxMessage is a message being read.
type mboxMessage struct {
	body     bytes.Buffer
	inBody   bool
	skipping bool // inside a meta header field, continuation lines too
	flags    []string
	date     time.Time
	source   string
}

func (m *mboxMessage) add(line []byte) {
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
	if name == "x-keywords" {
		m.flags = append(m.flags, strings.Fields(strings.ReplaceAll(value, ",", " "))...)
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
	if bytes.HasSuffix(b, []byte("\n\n")) {
		b = b[:len(b)-1]
	} else if bytes.HasSuffix(b, []byte("\r\n\r\n")) {
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
