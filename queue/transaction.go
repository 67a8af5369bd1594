package queue

import (
	"errors"
	"strings"
	"unicode/utf8"

	gosmtp "github.com/emersion/go-smtp"
)

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
	every := make([]int, len(rcpts))
	for i := range every {
		every[i] = i
	}
	c := s.client
	opts := &gosmtp.MailOptions{Size: int64(len(body))}
	if needsUTF8(from, rcpts) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return all(localOutcome(failed, "5.6.7", "%s does not support internationalized addresses (SMTPUTF8)", s.host), every)
		}
		opts.UTF8 = true
	}
	if err := c.Mail(from, opts); err != nil {
		return all(errorOutcome(err, "4.4.2"), every)
	}
	var accepted []int
	for i, rcpt := range rcpts {
		err := c.Rcpt(rcpt, nil)
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		if !isReply(err) {
			// The connection broke: nothing after this point is known.
			return all(errorOutcome(err, "4.4.2"), append(accepted, every[i:]...))
		}
		out[i] = errorOutcome(err, "4.4.2")
	}
	if len(accepted) == 0 {
		_ = c.Reset() // a courtesy before QUIT; the outcomes are settled
		return out
	}
	w, err := c.Data()
	if err != nil {
		return all(errorOutcome(err, "4.4.2"), accepted)
	}
	if _, err := w.Write(body); err != nil {
		return all(errorOutcome(err, "4.4.2"), accepted)
	}
	// A connection lost after the final dot but before the reply leaves us
	// not knowing whether the server took the message; it is deferred and
	// may arrive twice (RFC 1047).
	resp, err := w.CloseWithResponse()
	if err != nil {
		return all(errorOutcome(err, "4.4.2"), accepted)
	}
	return all(successOutcome(resp.StatusText), accepted)
}

func isReply(err error) bool {
	var se *gosmtp.SMTPError
	return errors.As(err, &se)
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
