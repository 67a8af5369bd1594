package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

// reachStore finds the store for a command that works whether the server
// runs or not: the running server's control socket (sock set) when it
// answers, otherwise the store opened directly (st set; the caller closes
// it).
func reachStore(cfg *config.Config) (sock string, st storeBackend, err error) {
	sock = filepath.Join(cfg.DataDir, controlSocketName)
	if conn, err := net.DialTimeout("unix", sock, 2*time.Second); err == nil {
		conn.Close()
		return sock, nil, nil
	}
	st, err = openStore(context.Background(), cfg, nil, nil, time.Second)
	if errors.Is(err, store.ErrInUse) {
		return "", nil, fmt.Errorf("the server holds the store but does not answer on %s: is its control socket in place?", sock)
	}
	return "", st, err
}

// cmdUsage lists every mailbox with its size, messages, quota and how
// full it is, fullest first; also the data of mailboxes no longer in the
// file, which `purge` deletes.
func cmdUsage(args []string, stdout, stderr io.Writer) int {
	cfg, dir, rest, code := loadDirectory("usage", args, stderr)
	if code != 0 {
		return code
	}
	if len(rest) != 0 {
		fmt.Fprintln(stderr, "usage: postkasse usage [-config FILE]")
		return 2
	}
	sock, st, err := reachStore(cfg)
	var stats []store.AccountStats
	switch {
	case err != nil:
	case st != nil:
		stats, err = st.Accounts(context.Background())
		st.Close()
	default:
		var ans controlAnswer
		ans, err = askControl(sock, "usage")
		stats = ans.Accounts
	}
	if err != nil {
		fmt.Fprintln(stderr, "postkasse usage:", err)
		return 1
	}
	printUsage(stdout, usageRows(dir, stats))
	return 0
}

// usageRow is one line of `postkasse usage`.
type usageRow struct {
	id, kind, address string
	stats             store.AccountStats
	quota             int64   // 0: unlimited
	percent           float64 // -1 without a quota
}

// usageRows joins the store's accounts with the file's mailboxes, fullest
// first; mailboxes without a quota, then those gone from the file, last.
func usageRows(dir *policy.Directory, stats []store.AccountStats) []usageRow {
	byID := make(map[string]store.AccountStats, len(stats))
	for _, s := range stats {
		byID[s.ID] = s
	}
	var rows []usageRow
	for _, mb := range dir.Mailboxes() {
		r := usageRow{id: mb.ID, kind: mb.Kind.String(), address: mb.Address, stats: byID[mb.ID], quota: mb.Quota, percent: -1}
		r.stats.ID = mb.ID
		if mb.Quota > 0 {
			r.percent = 100 * float64(r.stats.Size) / float64(mb.Quota)
		}
		delete(byID, mb.ID)
		rows = append(rows, r)
	}
	for id, s := range byID {
		rows = append(rows, usageRow{id: id, kind: "not in the file", stats: s, percent: -2})
	}
	slices.SortStableFunc(rows, func(a, b usageRow) int {
		return cmp.Or(cmp.Compare(b.percent, a.percent), cmp.Compare(b.stats.Size, a.stats.Size), cmp.Compare(a.id, b.id))
	})
	return rows
}

func printUsage(w io.Writer, rows []usageRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tKIND\tADDRESS\tSIZE\tMESSAGES\tQUOTA\tUSED")
	for _, r := range rows {
		quota, percent := "unlimited", "-"
		if r.quota > 0 {
			quota, percent = decimalSize(r.quota), fmt.Sprintf("%.1f%%", r.percent)
		}
		if r.percent == -2 {
			quota = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.id, r.kind, r.address, decimalSize(r.stats.Size), r.stats.Messages, quota, percent)
	}
	tw.Flush()
}

// decimalSize writes a byte count in the units of the file's quotas.
func decimalSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", v, "kMGTP"[i])
}

// cmdPurge deletes what the store holds for a mailbox key that is no
// longer in the file.
func cmdPurge(args []string, stdout, stderr io.Writer) int {
	cfg, dir, rest, code := loadDirectory("purge", args, stderr)
	if code != 0 {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: postkasse purge [-config FILE] KEY")
		return 2
	}
	id := rest[0]
	if _, ok := dir.Mailbox(id); ok {
		fmt.Fprintf(stderr, "postkasse purge: %s is a mailbox of %s: remove it from the file (and reload) first\n", id, cfg.File)
		return 1
	}
	sock, st, err := reachStore(cfg)
	switch {
	case err != nil:
	case st != nil:
		err = purgeAccount(context.Background(), st, id)
		st.Close()
	default:
		_, err = askControl(sock, "purge "+id)
	}
	if err != nil {
		fmt.Fprintln(stderr, "postkasse purge:", err)
		return 1
	}
	fmt.Fprintf(stdout, "purged %s\n", id)
	return 0
}

// Accounts lists what the store holds per account (`postkasse usage`).
func (s *server) Accounts(ctx context.Context) ([]store.AccountStats, error) {
	return s.store.Accounts(ctx)
}

// Purge deletes a removed mailbox's data, unless the configuration in
// force still has the mailbox (the file may have changed without a reload).
func (s *server) Purge(ctx context.Context, id string) error {
	if _, ok := s.dir.Load().Mailbox(id); ok {
		return fmt.Errorf("%s is a mailbox of the running configuration: reload the server after removing it from the file", id)
	}
	if err := purgeAccount(ctx, s.store, id); err != nil {
		return err
	}
	s.log.Info("mailbox data purged by the administrator", "mailbox", id)
	return nil
}

// purgeAccount deletes an account's data, saying in a sentence when there
// is none.
func purgeAccount(ctx context.Context, st storeBackend, id string) error {
	err := st.PurgeAccount(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("the store holds nothing for %s (see postkasse usage)", id)
	}
	return err
}
