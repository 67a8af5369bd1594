package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// runIdle opens N IDLE connections, reads the server's memory before and
// after, delivers one message and measures the push to every connection.
func runIdle(args []string) error {
	fs := newFlags("idle")
	addr := fs.String("smtp", "127.0.0.1:2525", "SMTP address (the first of a comma-separated list)")
	imapAddr := fs.String("imap", "127.0.0.1:2143", "IMAP address(es), comma-separated: IDLE connections take them in turn")
	pattern := fs.String("user-pattern", "user%d@contoso.test", "login pattern (1-based %d); also the recipients")
	conns := fs.Int("conns", 1000, "IDLE connections")
	users := fs.Int("users", 0, "distinct users (0: one per connection)")
	same := fs.Bool("same-folder", false, "every connection logs in as the first user and watches the same INBOX")
	pass := fs.String("pass", "", "password")
	pid := fs.Int("pid", 0, "server process id, to read its memory")
	fs.Parse(args)
	nUsers := *users
	if nUsers == 0 {
		nUsers = *conns
	}
	if *same {
		nUsers = 1
	}
	user := func(i int) string { return fmt.Sprintf(*pattern, i%nUsers+1) }
	before := rss(*pid)
	ws, err := openWatchers(splitAddrs(*imapAddr), *conns, user, *pass, "INBOX", 32)
	if err != nil {
		return err
	}
	defer closeWatchers(ws)
	runtime.GC()
	time.Sleep(time.Second) // let the server settle
	after := rss(*pid)
	rcpts := make([]string, nUsers)
	for i := range rcpts {
		rcpts[i] = user(i)
	}
	conn, err := dialSMTP(firstAddr(*addr))
	if err != nil {
		return err
	}
	defer conn.close()
	var start time.Time
	reply, err := conn.sendTimed("bench@mailbench.invalid", rcpts, testMessage("bench@mailbench.invalid", rcpts[0], 4096), &start)
	if err != nil {
		return err
	}
	delays, err := waitAll(ws, start, time.Minute)
	if err != nil {
		return err
	}
	rows := [][2]string{
		{"connections, distinct users", fmt.Sprintf("%d, %d", *conns, nUsers)},
		{"250 after (from DATA end)", reply.Round(time.Microsecond).String()},
		{"push to all after (from DATA end)", quantile(delays, 1).Round(time.Microsecond).String()},
		{"push p50 / p99", fmt.Sprintf("%v / %v", quantile(delays, 0.5).Round(time.Microsecond), quantile(delays, 0.99).Round(time.Microsecond))},
	}
	if *pid != 0 && after > 0 {
		rows = append(rows,
			[2]string{"server RSS before / with conns", fmt.Sprintf("%d KiB / %d KiB", before, after)},
			[2]string{"server memory per connection", fmt.Sprintf("%.1f KiB", float64(after-before)/float64(*conns))})
	}
	report("idle: pushes to connections in IDLE", rows)
	return nil
}

// rss reads a process's resident memory in KiB from /proc; 0 if unknown.
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
