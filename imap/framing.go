package imap

import (
	"bytes"
	"strconv"
)

// framer follows where lines and literals begin and end in one direction
// of an IMAP stream. It parses nothing of a command's meaning: only the
// framing that decides which bytes are a line and which are literal data
// (a line ending in {N} or {N+} is followed by N bytes of data), and, for
// the client's side, whether a line ended inside a quoted string.
type framer struct {
	quotes bool // track quoted strings (client input)

	literal int64 // literal bytes still to come
	head    []byte
	tail    []byte
	inQuote bool
	escaped bool
	cont    bool // the current line continues a command after a literal
}

// framerHead is how much of a line's start a framer keeps: enough for a
// tag and a command name.
const framerHead = 64

// framerTail is how much of a line's end a framer keeps: enough for the
// largest literal announcement, "{" 19 digits "+}\r".
const framerTail = 24

// lineEnd describes a line that a framer saw end.
type lineEnd struct {
	head        []byte // the line's first bytes (valid until the next feed)
	cont        bool   // the line continues a command begun before a literal
	literal     int64  // size of the literal it announces, or -1
	nonSync     bool   // the literal is {N+}
	brokenQuote bool   // the line ended inside a quoted string
}

// feed consumes bytes from p up to the end of one line, or all of p. It
// returns how many it consumed and, when a line ended there, its end.
func (f *framer) feed(p []byte) (int, *lineEnd) {
	if f.literal > 0 {
		n := int64(len(p))
		if n > f.literal {
			n = f.literal
		}
		f.literal -= n
		return int(n), nil
	}
	i := bytes.IndexByte(p, '\n')
	chunk := p
	if i >= 0 {
		chunk = p[:i+1]
	}
	f.keep(chunk)
	if f.quotes {
		f.trackQuotes(chunk)
	}
	if i < 0 {
		return len(p), nil
	}
	end := &lineEnd{head: f.head, cont: f.cont, literal: -1, brokenQuote: f.inQuote}
	if !f.inQuote {
		end.literal, end.nonSync = literalSuffix(f.tail)
	}
	f.cont = end.literal >= 0
	if end.literal > 0 {
		f.literal = end.literal
	}
	f.head, f.tail = f.head[:0], f.tail[:0]
	f.inQuote, f.escaped = false, false
	return len(chunk), end
}

// keep remembers the start and the end of the current line.
func (f *framer) keep(chunk []byte) {
	if room := framerHead - len(f.head); room > 0 {
		f.head = append(f.head, chunk[:min(room, len(chunk))]...)
	}
	if len(chunk) >= framerTail {
		f.tail = append(f.tail[:0], chunk[len(chunk)-framerTail:]...)
		return
	}
	f.tail = append(f.tail, chunk...)
	if len(f.tail) > framerTail {
		f.tail = append(f.tail[:0], f.tail[len(f.tail)-framerTail:]...)
	}
}

// trackQuotes follows quoted strings: '"' opens and closes one, '\'
// escapes the next byte inside one.
func (f *framer) trackQuotes(chunk []byte) {
	for _, b := range chunk {
		switch {
		case f.escaped:
			f.escaped = false
		case f.inQuote && b == '\\':
			f.escaped = true
		case b == '"':
			f.inQuote = !f.inQuote
		}
	}
}

// literalSuffix reads "{N}\r\n" or "{N+}\r\n" at the end of a line, as
// go-imap's decoder accepts it; -1 when there is none.
func literalSuffix(line []byte) (int64, bool) {
	rest, ok := bytes.CutSuffix(line, []byte("}\r\n"))
	if !ok {
		return -1, false
	}
	rest, nonSync := bytes.CutSuffix(rest, []byte("+"))
	open := bytes.LastIndexByte(rest, '{')
	if open < 0 || open == len(rest)-1 {
		return -1, false
	}
	digits := rest[open+1:]
	for _, d := range digits {
		if d < '0' || d > '9' {
			return -1, false
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return -1, false
	}
	return n, nonSync
}

// commandWords returns a command line's tag and its name in upper case.
func commandWords(head []byte) (tag, name string) {
	t, rest, ok := bytes.Cut(head, []byte(" "))
	if !ok {
		return string(bytes.TrimRight(t, "\r\n")), ""
	}
	end := bytes.IndexAny(rest, " \r\n")
	if end < 0 {
		end = len(rest)
	}
	return string(t), string(bytes.ToUpper(rest[:end]))
}
