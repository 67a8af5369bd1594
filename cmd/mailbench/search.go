package main

import (
	"fmt"
	"time"
)

// runSearch optionally adds corpus messages to a folder, then times SELECT
// and UID SEARCH of header fields and text on a raw connection, each
// reported with its number of hits.
func runSearch(args []string) error {
	fs := newFlags("search")
	addr := fs.String("imap", "127.0.0.1:2143", "IMAP address")
	user := fs.String("user", "", "user")
	pass := fs.String("pass", "", "password")
	folder := fs.String("folder", "INBOX", "folder")
	fill := fs.Int("fill", 0, "APPEND this many corpus messages first (numbered on from the folder's count)")
	conc := fs.Int("c", 32, "concurrent APPEND connections when filling")
	size := fs.Int("size", 4096, "size of filled messages")
	repeat := fs.Int("repeat", 3, "repetitions of each command")
	text := fs.Bool("text", true, "also time SEARCH TEXT and BODY (seconds each without an index)")
	fs.Parse(args)
	if *fill > 0 {
		c, err := dialIMAP(*addr, *user, *pass, nil)
		if err != nil {
			return err
		}
		have, err := countMessages(c, *folder)
		c.Logout()
		if err != nil {
			return err
		}
		gen := func(i int) []byte { return corpusMessage(int(have)+i, *user, *size) }
		if err := fillFolder(*addr, *user, *pass, *folder, *fill, *conc, gen); err != nil {
			return err
		}
	}
	raw, err := dialRaw(*addr, *user, *pass, "")
	if err != nil {
		return err
	}
	defer raw.Close()
	var selects []time.Duration
	for i := range max(*repeat, 5) {
		start := time.Now()
		if _, err := raw.command(fmt.Sprintf("s%d SELECT %s", i, quote(*folder))); err != nil {
			return err
		}
		selects = append(selects, time.Since(start))
		if i < max(*repeat, 5)-1 {
			if _, err := raw.command(fmt.Sprintf("u%d UNSELECT", i)); err != nil {
				return err
			}
		}
	}
	first := selects[0]
	rows := [][2]string{
		{"messages in folder", fmt.Sprint(raw.exists)},
		{"SELECT first / min / median", fmt.Sprintf("%v / %v / %v", first.Round(time.Microsecond),
			quantile(selects[1:], 0).Round(time.Microsecond), quantile(selects[1:], 0.5).Round(time.Microsecond))},
	}
	queries := []string{
		"HEADER Subject " + needleSubject,
		"SUBJECT " + needleSubject,
		"FROM " + needleFrom,
		"HEADER X-Department " + needleHeader,
	}
	if *text {
		queries = append(queries, "TEXT "+needleText, "BODY "+needleText)
	}
	for i, q := range queries {
		var times []time.Duration
		for r := range *repeat {
			start := time.Now()
			if _, err := raw.command(fmt.Sprintf("q%d.%d UID SEARCH %s", i, r, q)); err != nil {
				return fmt.Errorf("SEARCH %s: %w", q, err)
			}
			times = append(times, time.Since(start))
		}
		rows = append(rows, [2]string{q, fmt.Sprintf("%d hits, min %v, median %v", raw.hits,
			quantile(times, 0).Round(time.Millisecond), quantile(times, 0.5).Round(time.Millisecond))})
	}
	report("search: large folder", rows)
	return nil
}
