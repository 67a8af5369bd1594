package main

import (
	"crypto/rand"
	"fmt"

	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"
)

// testMessage makes a message of about size bytes with realistic headers
// and a Message-ID of its own.
func testMessage(from, to string, size int) []byte {
	id := rand.Text()
	var b strings.Builder
	fmt.Fprintf(&b, "From: Bench <%s>\r\nTo: <%s>\r\nSubject: mailbench message %s\r\n", from, to, id[:8])
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <bench-%s@mailbench.invalid>\r\nMIME-Version: 1.0\r\n", time.Now().Format(time.RFC1123Z), id)
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\nX-Mailbench: 1\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// smtpConn is one SMTP client connection reused for many messages.
type smtpConn struct{ c *gosmtp.Client }

func dialSMTP(addr string) (*smtpConn, error) {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Hello("mailbench.invalid"); err != nil {
		c.Close()
		return nil, err
	}
	return &smtpConn{c: c}, nil
}

// send runs one transaction and returns the time from the end of DATA to
// the server's reply.
func (s *smtpConn) send(from string, to []string, msg []byte) (time.Duration, error) {
	var dataEnd time.Time
	return s.sendTimed(from, to, msg, &dataEnd)
}

// sendTimed is send that also reports when the message was fully sent.
func (s *smtpConn) sendTimed(from string, to []string, msg []byte, dataEnd *time.Time) (time.Duration, error) {
	if err := s.c.Mail(from, nil); err != nil {
		return 0, err
	}
	for _, r := range to {
		if err := s.c.Rcpt(r, nil); err != nil {
			return 0, err
		}
	}
	w, err := s.c.Data()
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(msg); err != nil {
		return 0, err
	}
	start := time.Now()
	*dataEnd = start
	if err := w.Close(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	return d, s.c.Reset()
}

func (s *smtpConn) close() { s.c.Quit(); s.c.Close() }

func dialIMAP(addr, user, pass string, handler *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: handler})
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return c, nil
}

func countMessages(c *imapclient.Client, folder string) (uint32, error) {
	st, err := c.Status(folder, &goimap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0, err
	}
	return *st.NumMessages, nil
}

// appendMessage stores a message with APPEND.
func appendMessage(c *imapclient.Client, folder string, msg []byte) error {
	cmd := c.Append(folder, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}
