package main

import (
	"bufio"
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
	for i, cmd := range []string{
		fmt.Sprintf("l LOGIN %s %s", quote(user), quote(pass)),
		fmt.Sprintf("s SELECT %s", quote(folder)),
	} {
		if _, err := c.command(cmd); err != nil {
			conn.Close()
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
	}
	return c, nil
}

func quote(s string) string { return strconv.Quote(s) }

// command sends a tagged command and reads to its completion, returning
// how many untagged FETCH responses came.
func (c *rawIMAP) command(cmd string) (int, error) {
	tag := strings.Fields(cmd)[0]
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
		if strings.HasPrefix(line, "* ") && strings.Contains(line, " FETCH ") {
			fetches++
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				return fetches, fmt.Errorf("%s", line)
			}
			return fetches, nil
		}
	}
}

// readLine reads one logical response line, skipping over literals.
func (c *rawIMAP) readLine() (string, error) {
	var first string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if first == "" {
			first = line
		}
		trimmed := strings.TrimRight(line, "\r\n")
		if !strings.HasSuffix(trimmed, "}") {
			return first, nil
		}
		open := strings.LastIndexByte(trimmed, '{')
		n, err := strconv.Atoi(strings.TrimSuffix(trimmed[open+1:len(trimmed)-1], "+"))
		if open < 0 || err != nil {
			return first, nil
		}
		if _, err := c.r.Discard(n); err != nil {
			return "", err
		}
	}
}

func (c *rawIMAP) Close() error { return c.conn.Close() }
