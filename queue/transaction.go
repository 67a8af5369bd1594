package queue

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxGroup bounds the bytes of a group of pipelined commands. A client that
// writes a group before reading any reply must keep it within the TCP
// window, "usually, but not always, 4K octets", or it can deadlock with a
// server that waits for its replies to be read (RFC 2920 section 3.1).
const maxGroup = 4096

// transact sends one message to rcpts over s and returns one outcome per
// recipient, in order. A rejected RCPT affects only its recipient; a
// rejected MAIL or DATA, or a broken connection, affects all that were still
// in play.
func transact(s *session, from string, rcpts []string, body []byte) []outcome {
	out := make([]outcome, len(rcpts))
	all := func(o outcome, idx []int) []outcome {
		for _, i := range idx {
			out[i] = o
		}
		return out
	}
	// Recipients whose outcome is not settled yet: those not refused.
	open := func() []int {
		var idx []int
		for i, o := range out {
			if o.result == 0 {
				idx = append(idx, i)
			}
		}
		return idx
	}
	if !validLine(from) {
		return all(localOutcome(failed, "5.1.7", "bad sender address %q", from), open())
	}
	for i, rcpt := range rcpts {
		if !validLine(rcpt) {
			out[i] = localOutcome(failed, "5.1.3", "bad recipient address %q", rcpt)
		}
	}
	intl := needsUTF8(from, rcpts)
	if intl && !s.ext.has("SMTPUTF8") {
		return all(localOutcome(failed, "5.6.7", "%s does not support internationalized addresses (SMTPUTF8)", s.host), open())
	}
	accepted, err := s.envelope(s.mailCommand(from, len(body), intl), rcpts, out)
	if err != nil {
		return all(errorOutcome(err, "4.4.2"), open())
	}
	if len(accepted) == 0 {
		_, _ = s.cmd(250, "RSET") // a courtesy before QUIT; the outcomes are settled
		return out
	}
	reply, err := s.data(body)
	if err != nil {
		return all(errorOutcome(err, "4.4.2"), accepted)
	}
	return all(successOutcome(reply), accepted)
}

// mailCommand is the MAIL command for a message of size bytes, with the
// parameters the server understands.
func (s *session) mailCommand(from string, size int, intl bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM:<%s>", from)
	if s.ext.has("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if s.ext.has("SIZE") && size > 0 {
		fmt.Fprintf(&b, " SIZE=%d", size)
	}
	if intl {
		b.WriteString(" SMTPUTF8")
	}
	return b.String()
}

// envelope sends mail and a RCPT for each recipient whose outcome in out is
// not settled yet, and returns the positions of the recipients the server
// accepted; refused ones get their outcome in out. When the server offers
// PIPELINING (RFC 2920) the commands go out in groups, each in one write,
// and their replies are read in order; otherwise each command waits for the
// reply to the one before. An error means MAIL was refused or the connection
// broke: nothing is known of the recipients not yet refused.
func (s *session) envelope(mail string, rcpts []string, out []outcome) ([]int, error) {
	cmds := []string{mail}
	idx := []int{-1} // the recipient of each command; -1 for MAIL
	for i, rcpt := range rcpts {
		if out[i].result == 0 {
			cmds = append(cmds, "RCPT TO:<"+rcpt+">")
			idx = append(idx, i)
		}
	}
	pipelining := s.ext.has("PIPELINING")
	var accepted []int
	var mailErr error
	for start, end := 0, 0; start < len(cmds); start = end {
		end = groupEnd(cmds, start, pipelining)
		if err := s.send(commandTimeout, cmds[start:end]...); err != nil {
			return nil, err
		}
		// Every reply of a group is read, even after MAIL was refused, so
		// that the next reply read is the one to the next command.
		for c := start; c < end; c++ {
			expect := 25 // 250, or 251 for a forwarded recipient
			if c == 0 {
				expect = 250
			}
			_, err := s.read(expect, commandTimeout)
			switch {
			case err != nil && !isReply(err):
				return nil, err
			case c == 0:
				mailErr = err
			case mailErr != nil:
				// The refusals of RCPTs sent with a refused MAIL say
				// nothing about the recipients.
			case err != nil:
				out[idx[c]] = errorOutcome(err, "4.4.2")
			default:
				accepted = append(accepted, idx[c])
			}
		}
		if mailErr != nil {
			return nil, mailErr
		}
	}
	return accepted, nil
}

// groupEnd returns the end of the group of commands that begins at start:
// one command without pipelining, otherwise as many as fit in maxGroup.
func groupEnd(cmds []string, start int, pipelining bool) int {
	end, size := start+1, len(cmds[start])+2
	for pipelining && end < len(cmds) && size+len(cmds[end])+2 <= maxGroup {
		size += len(cmds[end]) + 2
		end++
	}
	return end
}

// data sends DATA and the message, and returns the text of the reply to the
// final dot.
func (s *session) data(body []byte) (string, error) {
	if _, err := s.cmd(354, "DATA"); err != nil {
		return "", err
	}
	// A large message over a slow link may take long; the session's time
	// limit (its context) bounds the upload instead of a write deadline.
	if err := s.conn.SetWriteDeadline(time.Time{}); err != nil {
		return "", err
	}
	w := s.text.DotWriter()
	if _, err := w.Write(body); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	// A connection lost after the final dot but before the reply leaves us
	// not knowing whether the server took the message; it is deferred and
	// may arrive twice (RFC 1047).
	return s.read(250, submissionTimeout)
}

// successOutcome reads the reply to the final dot, such as "2.0.0 OK
// queued as 1234" (the client has already checked the 250).
func successOutcome(text string) outcome {
	o := outcome{result: delivered, code: 250, status: "2.0.0", text: oneLine(text)}
	if code, rest, ok := strings.Cut(o.text, " "); ok && validStatus(code) && code[0] == '2' {
		o.status, o.text = code, rest
	}
	return o
}

// validLine reports whether an address can go into a command line: a CR or
// LF in it would end the command and start another.
func validLine(addr string) bool {
	return !strings.ContainsAny(addr, "\r\n")
}

// needsUTF8 reports whether any envelope address is not plain ASCII.
func needsUTF8(from string, rcpts []string) bool {
	ascii := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				return false
			}
		}
		return true
	}
	if !ascii(from) {
		return true
	}
	for _, r := range rcpts {
		if !ascii(r) {
			return true
		}
	}
	return false
}
