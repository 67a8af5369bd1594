// Command mailbench measures a mail server over real sockets with standard
// SMTP and IMAP, so the same figures can be taken from postkasse, Postfix +
// Dovecot or anything else:
//
//	mailbench smtp   -smtp HOST:PORT -rcpt ADDR [-n 20000 -c 32 -size 4096] [-imap HOST:PORT -user U -pass P]
//	mailbench fanout -smtp HOST:PORT -imap HOST:PORT -rcpt-pattern 'user%d@example.org' -count 1000 -pass P
//	mailbench fetch  -imap HOST:PORT -user U -pass P [-fill 100000] [-repeat 5]
//	mailbench search -imap HOST:PORT -user U -pass P [-fill 100000] [-repeat 3]
//	mailbench idle   -smtp HOST:PORT -imap HOST:PORT -user-pattern 'user%d@example.org' -conns 1000 -pass P [-same-folder] [-pid PID]
//
// Servers of several nodes sharing one store are measured by giving -smtp
// and -imap several addresses, comma-separated: smtp spreads its
// connections over them in turn and waits until the messages are visible
// through every IMAP address; fanout and idle send through the first SMTP
// address and spread their IDLE connections over the IMAP addresses, so
// `-smtp A -imap B` times the push from one node to another.
//
// Every loop is bounded in count and time; targets come from flags only.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mailbench smtp|fanout|fetch|search|idle [flags]  (mailbench CMD -h for flags)")
		os.Exit(2)
	}
	raiseFileLimit()
	var err error
	switch os.Args[1] {
	case "smtp":
		err = runSMTP(os.Args[2:])
	case "fanout":
		err = runFanout(os.Args[2:])
	case "fetch":
		err = runFetch(os.Args[2:])
	case "search":
		err = runSearch(os.Args[2:])
	case "idle":
		err = runIdle(os.Args[2:])
	default:
		err = fmt.Errorf("unknown scenario %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailbench:", err)
		os.Exit(1)
	}
}

func newFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet(name, flag.ExitOnError)
}

// quantile returns the q-quantile of sorted durations.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*q))]
}

// splitAddrs splits a comma-separated list of addresses.
func splitAddrs(list string) []string {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// firstAddr is the first address of a comma-separated list ("" if none).
func firstAddr(list string) string {
	if addrs := splitAddrs(list); len(addrs) > 0 {
		return addrs[0]
	}
	return ""
}

func report(title string, rows [][2]string) {
	fmt.Printf("== %s\n", title)
	for _, r := range rows {
		fmt.Printf("  %-34s %s\n", r[0], r[1])
	}
}
