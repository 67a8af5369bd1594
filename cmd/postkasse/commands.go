package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/password"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/srs"
	"postkasse.dev/postkasse/store"
)

// loadDirectory reads the file named by -config and builds the directory.
func loadDirectory(name string, args []string, stderr io.Writer) (*config.Config, *policy.Directory, []string, int) {
	c := newCommand(name, "configuration file", stderr)
	cfg, code := c.load(args, anyArgs, "")
	if cfg == nil {
		return nil, nil, nil, code
	}
	dir, err := policy.NewDirectory(directoryOptions(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.File, err)
		return nil, nil, nil, 1
	}
	return cfg, dir, c.fs.Args(), 0
}

// cmdCheck validates the file and prints what it means.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	cfg, dir, _, code := loadDirectory("check", args, stderr)
	if code != 0 {
		return code
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s: valid\n\nhostname\t%s\ndomains\t%s\ndata\t%s\nstore\t%s\n", cfg.File, cfg.Hostname, strings.Join(cfg.Domains, ", "), cfg.DataDir, describeStore(cfg))
	printInbound(w, cfg)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "MAILBOX\tKIND\tADDRESSES")
	for _, mb := range dir.Mailboxes() {
		fmt.Fprintf(w, "%s\t%s\t%s\n", mb.ID, mb.Kind, strings.Join(dir.Addresses(mb.ID), ", "))
	}
	fmt.Fprintln(w, "\nGROUP\tADDRESS\tMEMBERS")
	for _, g := range dir.Groups() {
		fmt.Fprintf(w, "%s\t%s\t%s\n", g.ID, g.Address, strings.Join(g.Members, ", "))
	}
	fmt.Fprintln(w, "\nUSER\tMAY SEND AS\tREACHES")
	for _, mb := range dir.Mailboxes() {
		if mb.Kind != policy.KindUser {
			continue
		}
		var reach []string
		for _, shared := range dir.Reachable(mb.ID) {
			reach = append(reach, fmt.Sprintf("%s (%s)", shared.Address, dir.Rights(mb.ID, shared.ID)))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", mb.ID, strings.Join(dir.SendAs(mb.ID), ", "), strings.Join(reach, ", "))
	}
	for _, addr := range dir.Unattended() {
		fmt.Fprintf(w, "\nwarning: nobody receives %s (set postmaster, or give a mailbox that address); mail to it is refused\n", addr)
	}
	if accounts := connectedAccounts(cfg); len(accounts) > 0 {
		fmt.Fprintln(w, "\nCONNECTED\tREMOTE\tFOLDER\tINTO\tEVERY")
		for _, a := range accounts {
			into := a.Into
			if a.DeleteRemote {
				into += ", remote copy deleted"
			}
			fmt.Fprintf(w, "%s\t%s at %s (%s)\t%s\t%s\t%s\n", a.Mailbox, a.Username, a.Host, a.Security, a.Folder, into, a.Interval)
		}
	}
	w.Flush()
	return 0
}

// cmdResolve shows where mail to an address goes.
func cmdResolve(args []string, stdout, stderr io.Writer) int {
	cfg, dir, rest, code := loadDirectory("resolve", args, stderr)
	if code != 0 {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: postkasse resolve [-config FILE] ADDRESS")
		return 2
	}
	// Scripts read the status: 0 when mail to the address is taken, 1
	// when the MX port refuses it.
	if srs.IsSRS(rest[0]) {
		if !explainSRS(stdout, cfg, rest[0]) {
			return 1
		}
		return 0
	}
	fmt.Fprint(stdout, dir.Explain(rest[0], time.Now()))
	if _, ok := dir.Resolve(rest[0]); !ok {
		return 1
	}
	return 0
}

// explainSRS tells where mail to an SRS address goes: back to the original
// sender, when it is one of this server's and still valid; false when
// mail to it is refused.
func explainSRS(w io.Writer, cfg *config.Config, addr string) bool {
	secret, err := os.ReadFile(srsKeyPath(cfg.DataDir))
	if err == nil {
		var orig string
		if orig, err = srs.New(secret, cfg.Domains[0]).Reverse(addr, time.Now()); err == nil {
			fmt.Fprintf(w, "%s: SRS address of forwarded mail; mail to it (a bounce) goes back to %s\n", addr, orig)
			return true
		}
	}
	fmt.Fprintf(w, "%s: SRS address, but not a valid one of this server (%v); refused with 550 5.1.1\n", addr, err)
	return false
}

// cmdPasswd reads a password and prints its hash. On a terminal it asks
// twice without echo; otherwise it reads the first line of stdin.
func cmdPasswd(stdin io.Reader, stdout, stderr io.Writer) int {
	var pw string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			fmt.Fprintln(stderr, "postkasse passwd:", err)
			return 1
		}
		fmt.Fprint(stderr, "Again: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil || string(first) != string(second) {
			fmt.Fprintln(stderr, "postkasse passwd: the passwords differ")
			return 1
		}
		pw = string(first)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintln(stderr, "postkasse passwd:", err)
			return 1
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	hash, err := password.Hash(pw)
	if err != nil {
		fmt.Fprintln(stderr, "postkasse passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

// cmdQueue lists, flushes or deletes queued mail of a running server.
func cmdQueue(args []string, stdout, stderr io.Writer) int {
	c := newCommand("queue", "configuration file", stderr)
	cfg, code := c.load(args, anyArgs, "")
	if cfg == nil {
		return code
	}
	sock := filepath.Join(cfg.DataDir, controlSocketName)
	rest := c.fs.Args()
	switch {
	case len(rest) == 0 || len(rest) == 1 && rest[0] == "list":
		ans, err := askControl(sock, "queue list")
		if err != nil {
			fmt.Fprintln(stderr, "postkasse queue:", err)
			return 1
		}
		printQueue(stdout, ans)
	case len(rest) == 1 && rest[0] == "flush":
		if _, err := askControl(sock, "queue flush"); err != nil {
			fmt.Fprintln(stderr, "postkasse queue:", err)
			return 1
		}
		fmt.Fprintln(stdout, "queue flushed")
	case len(rest) == 2 && rest[0] == "delete":
		if _, err := askControl(sock, "queue delete "+rest[1]); err != nil {
			fmt.Fprintln(stderr, "postkasse queue:", err)
			return 1
		}
		fmt.Fprintln(stdout, "deleted", rest[1])
	default:
		fmt.Fprintln(stderr, "usage: postkasse queue [-config FILE] list|flush|delete ID")
		return 2
	}
	return 0
}

func printQueue(w io.Writer, ans controlAnswer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFROM\tRECIPIENTS\tATTEMPTS\tNEXT TRY\tLAST ERROR")
	for _, m := range ans.Messages {
		// Only the recipients still waiting: the others are delivered or
		// have failed (and bounced) already.
		var rcpts []string
		for _, r := range m.Recipients {
			if r.State == store.RecipientPending {
				rcpts = append(rcpts, r.Address)
			}
		}
		from := m.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", m.ID, from, strings.Join(rcpts, ","), m.Attempts,
			m.NextAttempt.Format(time.RFC3339), m.LastError)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d queued\n", len(ans.Messages))
}
