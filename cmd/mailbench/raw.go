package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// rawIMAP is a bare IMAP connection for timing large responses: it reads
// lines and literals and counts untagged FETCH responses, decoding nothing.
type rawIMAP struct {
	conn net.Conn
	r    *bufio.Reader
	// hits is the number of numbers in the last * SEARCH response and
	// exists the last * n EXISTS.
	hits, exists int
	// literalBytes counts the bytes of every literal read.
	literalBytes int64
}

func dialRaw(addr, user, pass, folder string) (*rawIMAP, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &rawIMAP{conn: conn, r: bufio.NewReaderSize(conn, 256<<10)}
	if _, err := c.r.ReadString('\n'); err != nil {
		conn.Close()
		return nil, err
	}
	cmds := []string{fmt.Sprintf("l LOGIN %s %s", quote(user), quote(pass))}
	if folder != "" {
		cmds = append(cmds, fmt.Sprintf("s SELECT %s", quote(folder)))
	}
	for i, cmd := range cmds {
		if _, err := c.command(cmd); err != nil {
			conn.Close()
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
	}
	return c, nil
}

func quote(s string) string { return strconv.Quote(s) }

// command sends a tagged command and reads to its completion, returning
// how many untagged FETCH responses came. Lines are looked at in the
// reader's buffer, never copied, so the client spends as little of the
// machine as it can while the server is being timed.
func (c *rawIMAP) command(cmd string) (int, error) {
	tag := []byte(strings.Fields(cmd)[0] + " ")
	c.conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := io.WriteString(c.conn, cmd+"\r\n"); err != nil {
		return 0, err
	}
	fetches := 0
	for {
		line, err := c.readLine()
		if err != nil {
			return fetches, err
		}
		if bytes.HasPrefix(line, []byte("* ")) && bytes.Contains(line, []byte(" FETCH ")) {
			fetches++
		}
		c.count(line)
		if bytes.HasPrefix(line, tag) {
			if !bytes.HasPrefix(line[len(tag):], []byte("OK")) {
				return fetches, fmt.Errorf("%s", line)
			}
			return fetches, nil
		}
	}
}

// count notes the hits of a SEARCH response and the size of an EXISTS.
func (c *rawIMAP) count(line []byte) {
	line = bytes.TrimRight(line, "\r\n")
	if rest, ok := bytes.CutPrefix(line, []byte("* SEARCH")); ok {
		c.hits = len(bytes.Fields(rest))
		return
	}
	if rest, ok := bytes.CutPrefix(line, []byte("* ")); ok {
		if n, ok := bytes.CutSuffix(rest, []byte(" EXISTS")); ok {
			c.exists, _ = strconv.Atoi(string(n))
		}
	}
}

// readLine reads one logical response line, skipping over literals, and
// returns its first physical line (up to the reader's buffer size). The
// slice is valid until the next read.
func (c *rawIMAP) readLine() ([]byte, error) {
	var first []byte
	for {
		line, err := c.readPhysical()
		if err != nil {
			return nil, err
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		n, literal := literalSize(trimmed)
		if first == nil {
			if literal {
				// The literal's bytes are about to replace this line in the buffer.
				first = bytes.Clone(line)
			} else {
				first = line
			}
		}
		if !literal {
			return first, nil
		}
		if _, err := c.r.Discard(n); err != nil {
			return nil, err
		}
		c.literalBytes += int64(n)
	}
}

// readPhysical reads up to the next LF; of a line longer than the buffer
// only the start is returned, the rest is read past.
func (c *rawIMAP) readPhysical() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	start := bytes.Clone(line)
	for err == bufio.ErrBufferFull {
		line, err = c.r.ReadSlice('\n')
	}
	if err != nil {
		return nil, err
	}
	// Keep the line's end, which says whether a literal follows.
	return append(start, line[max(0, len(line)-32):]...), nil
}

// literalSize reads the {n} or {n+} a line ends with.
func literalSize(line []byte) (int, bool) {
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(string(line[open+1:len(line)-1]), "+"))
	if err != nil {
		return 0, false
	}
	return n, true
}

func (c *rawIMAP) Close() error { return c.conn.Close() }
