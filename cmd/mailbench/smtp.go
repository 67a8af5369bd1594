package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// runSMTP sends N messages over C connections and, with -imap, waits until
// every one of them is visible in the recipient's folder.
func runSMTP(args []string) error {
	fs := newFlags("smtp")
	addr := fs.String("smtp", "127.0.0.1:2525", "SMTP address(es), comma-separated: connections take them in turn")
	rcpt := fs.String("rcpt", "", "recipient(s), comma-separated")
	from := fs.String("from", "bench@mailbench.invalid", "envelope sender")
	n := fs.Int("n", 20000, "messages")
	conc := fs.Int("c", 32, "concurrent connections")
	size := fs.Int("size", 4096, "message size in bytes")
	imapAddr := fs.String("imap", "", "IMAP address(es) to check visibility through, comma-separated (optional)")
	user := fs.String("user", "", "IMAP user owning the recipient's folder")
	pass := fs.String("pass", "", "IMAP password")
	folder := fs.String("folder", "INBOX", "folder the messages land in")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	dkimKey := fs.String("dkim-key", "", "sign the message with this PKCS #8 PEM key (as the sender's domain)")
	dkimSelector := fs.String("dkim-selector", "mb", "selector of -dkim-key")
	fs.Parse(args)
	if *rcpt == "" {
		return fmt.Errorf("-rcpt is required")
	}
	rcpts := strings.Split(*rcpt, ",")
	smtpAddrs, imapAddrs := splitAddrs(*addr), splitAddrs(*imapAddr)
	if len(smtpAddrs) == 0 {
		return fmt.Errorf("-smtp is required")
	}
	var before uint32
	if len(imapAddrs) > 0 {
		c, err := dialIMAP(imapAddrs[0], *user, *pass, nil)
		if err != nil {
			return err
		}
		if before, err = countMessages(c, *folder); err != nil {
			return err
		}
		c.Logout()
	}
	msg, err := dkimSign(testMessage(*from, rcpts[0], *size), *from, *dkimKey, *dkimSelector)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	start := time.Now()
	latencies, failures := sendAll(smtpAddrs, *from, rcpts, msg, *n, *conc, deadline)
	accepted := time.Since(start)
	rows := [][2]string{
		{"messages accepted", fmt.Sprintf("%d of %d (%d failed)", len(latencies), *n, failures)},
		{"connections, size", fmt.Sprintf("%d over %d address(es), %d bytes", *conc, len(smtpAddrs), len(msg))},
		{"accepted per second", fmt.Sprintf("%.0f", float64(len(latencies))/accepted.Seconds())},
		{"DATA reply latency p50 / p99", fmt.Sprintf("%v / %v", quantile(latencies, 0.5), quantile(latencies, 0.99))},
	}
	if len(imapAddrs) > 0 {
		want := before + uint32(len(latencies)*countLocal(rcpts, *user))
		visible, err := waitVisibleAll(imapAddrs, *user, *pass, *folder, want, deadline)
		if err != nil {
			return err
		}
		total := visible.Sub(start)
		rows = append(rows,
			[2]string{"all visible over IMAP after", fmt.Sprintf("%v (through %d address(es))", total.Round(time.Millisecond), len(imapAddrs))},
			[2]string{"visible over IMAP per second", fmt.Sprintf("%.0f", float64(len(latencies))/total.Seconds())})
	}
	report("smtp: concurrent delivery", rows)
	return nil
}

// sendAll sends n copies of msg over conc connections, the i-th to
// addrs[i mod len(addrs)], until deadline and returns the DATA reply latency
// of each accepted one and the failures.
func sendAll(addrs []string, from string, rcpts []string, msg []byte, n, conc int, deadline time.Time) ([]time.Duration, int) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  int
		next      int
	)
	var wg sync.WaitGroup
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := dialSMTP(addrs[i%len(addrs)])
			if err != nil {
				mu.Lock()
				failures++
				mu.Unlock()
				return
			}
			defer conn.close()
			for time.Now().Before(deadline) {
				mu.Lock()
				if next >= n {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				d, err := conn.send(from, rcpts, msg)
				mu.Lock()
				if err != nil {
					failures++
				} else {
					latencies = append(latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return latencies, failures
}

// countLocal is how many copies of each message land in user's folder.
func countLocal(rcpts []string, user string) int {
	n := 0
	for _, r := range rcpts {
		if strings.EqualFold(r, user) {
			n++
		}
	}
	return max(n, 1)
}

// waitVisibleAll waits until the folder holds want messages as seen through
// every address and returns when the last one did.
func waitVisibleAll(addrs []string, user, pass, folder string, want uint32, deadline time.Time) (time.Time, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		last    time.Time
		lastErr error
	)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := waitVisible(a, user, pass, folder, want, deadline)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", a, err)
			}
			if t.After(last) {
				last = t
			}
		}()
	}
	wg.Wait()
	return last, lastErr
}

// waitVisible polls STATUS until the folder holds want messages.
func waitVisible(addr, user, pass, folder string, want uint32, deadline time.Time) (time.Time, error) {
	c, err := dialIMAP(addr, user, pass, nil)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Logout()
	for time.Now().Before(deadline) {
		got, err := countMessages(c, folder)
		if err != nil {
			return time.Time{}, err
		}
		if got >= want {
			return time.Now(), nil
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("messages not visible over IMAP before the deadline")
}
