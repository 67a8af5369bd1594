package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"postkasse.dev/postkasse/store"
)

// cmdCompact rewrites the store file without its free space. The server
// must be stopped: the store refuses a second user.
func cmdCompact(args []string, stdout, stderr io.Writer) int {
	c := newCommand("compact", "configuration file (for the data directory)", stderr)
	cfg, code := c.load(args, exactly(0), "usage: postkasse compact [-config FILE]")
	if cfg == nil {
		return code
	}
	if bboltOnly("compact", cfg, stderr) {
		return 1
	}
	db := storePath(cfg)
	before, after, err := store.Compact(context.Background(), db)
	if errors.Is(err, store.ErrInUse) {
		fmt.Fprintf(stderr, "postkasse compact: %s is in use: stop the server first (systemctl stop postkasse)\n", db)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "postkasse compact:", err)
		return 1
	}
	if after == before {
		fmt.Fprintf(stdout, "%s: %s, no free space to give back: left as it was\n", db, mebibytes(before))
		return 0
	}
	fmt.Fprintf(stdout, "%s: %s, now %s\n", db, mebibytes(before), mebibytes(after))
	return 0
}

func mebibytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
