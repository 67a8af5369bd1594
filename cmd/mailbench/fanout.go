package main

import (
	"fmt"
	"time"
)

// runFanout sends one message to R recipients in one transaction and
// measures how long until it is visible in every recipient's INBOX.
func runFanout(args []string) error {
	fs := newFlags("fanout")
	addr := fs.String("smtp", "127.0.0.1:2525", "SMTP address (the first of a comma-separated list)")
	imapAddr := fs.String("imap", "127.0.0.1:2143", "IMAP address(es), comma-separated: IDLE connections take them in turn")
	pattern := fs.String("rcpt-pattern", "user%d@contoso.test", "recipient address pattern (1-based %d)")
	count := fs.Int("count", 1000, "recipients")
	pass := fs.String("pass", "", "password of every recipient")
	size := fs.Int("size", 4096, "message size in bytes")
	dkimKey := fs.String("dkim-key", "", "sign the message with this PKCS #8 PEM key (as the sender's domain)")
	dkimSelector := fs.String("dkim-selector", "mb", "selector of -dkim-key")
	fs.Parse(args)
	user := func(i int) string { return fmt.Sprintf(*pattern, i+1) }
	ws, err := openWatchers(splitAddrs(*imapAddr), *count, user, *pass, "INBOX", 32)
	if err != nil {
		return err
	}
	defer closeWatchers(ws)
	rcpts := make([]string, *count)
	for i := range rcpts {
		rcpts[i] = user(i)
	}
	conn, err := dialSMTP(firstAddr(*addr))
	if err != nil {
		return err
	}
	defer conn.close()
	// The clock starts when the message has been sent (the end of DATA):
	// from there the server stores it for every recipient, answers 250 and
	// pushes it to every INBOX.
	const from = "bench@mailbench.invalid"
	msg, err := dkimSign(testMessage(from, rcpts[0], *size), from, *dkimKey, *dkimSelector)
	if err != nil {
		return err
	}
	var dataEnd time.Time
	reply, err := conn.sendTimed(from, rcpts, msg, &dataEnd)
	if err != nil {
		return err
	}
	delays, err := waitAll(ws, dataEnd, time.Minute)
	if err != nil {
		return err
	}
	report("fanout: one message to many recipients", [][2]string{
		{"recipients", fmt.Sprint(*count)},
		{"250 after (end of DATA)", reply.Round(time.Microsecond).String()},
		{"visible in every INBOX after", quantile(delays, 1).Round(time.Microsecond).String()},
		{"visible p50", quantile(delays, 0.5).Round(time.Microsecond).String()},
	})
	return nil
}
