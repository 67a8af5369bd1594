package main

import (
	"fmt"
	"sync"
	"time"
)

// runFetch optionally fills a folder, then times SELECT and
// UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE).
func runFetch(args []string) error {
	fs := newFlags("fetch")
	addr := fs.String("imap", "127.0.0.1:2143", "IMAP address")
	user := fs.String("user", "", "user")
	pass := fs.String("pass", "", "password")
	folder := fs.String("folder", "INBOX", "folder")
	fill := fs.Int("fill", 0, "APPEND this many messages first")
	conc := fs.Int("c", 8, "concurrent APPEND connections when filling")
	size := fs.Int("size", 4096, "size of filled messages")
	repeat := fs.Int("repeat", 5, "FETCH repetitions")
	body := fs.Bool("body", false, "also time UID FETCH 1:* BODY.PEEK[] (whole messages)")
	fs.Parse(args)
	if *fill > 0 {
		gen := func(int) []byte { return testMessage("filler@mailbench.invalid", *user, *size) }
		if err := fillFolder(*addr, *user, *pass, *folder, *fill, *conc, gen); err != nil {
			return err
		}
	}
	c, err := dialIMAP(*addr, *user, *pass, nil)
	if err != nil {
		return err
	}
	defer c.Logout()
	var selects []time.Duration
	var n uint32
	for range 3 {
		start := time.Now()
		sel, err := c.Select(*folder, nil).Wait()
		if err != nil {
			return err
		}
		selects = append(selects, time.Since(start))
		n = sel.NumMessages
		c.Unselect().Wait()
	}
	if _, err := c.Select(*folder, nil).Wait(); err != nil {
		return err
	}
	// The FETCH is timed on a raw connection that only counts responses, so
	// the figure is the server's, not an IMAP client library's decoding.
	raw, err := dialRaw(*addr, *user, *pass, *folder)
	if err != nil {
		return err
	}
	defer raw.Close()
	var fetches []time.Duration
	for i := range *repeat {
		start := time.Now()
		got, err := raw.command(fmt.Sprintf("f%d UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)", i))
		if err != nil {
			return err
		}
		if got != int(n) {
			return fmt.Errorf("FETCH returned %d of %d messages", got, n)
		}
		fetches = append(fetches, time.Since(start))
	}
	rows := [][2]string{
		{"messages in folder", fmt.Sprint(n)},
		{"SELECT first / then", fmt.Sprintf("%v / %v", selects[0].Round(time.Microsecond), selects[len(selects)-1].Round(time.Microsecond))},
	}
	for i, d := range fetches {
		rows = append(rows, [2]string{fmt.Sprintf("UID FETCH 1:* run %d", i+1), d.Round(time.Millisecond).String()})
	}
	rows = append(rows, [2]string{"UID FETCH 1:* min / median", fmt.Sprintf("%v / %v", quantile(fetches, 0).Round(time.Millisecond), quantile(fetches, 0.5).Round(time.Millisecond))})
	if *body {
		more, err := timeBodies(raw, int(n), *repeat)
		if err != nil {
			return err
		}
		rows = append(rows, more...)
	}
	report("fetch: large folder", rows)
	return nil
}

// timeBodies times UID FETCH 1:* BODY.PEEK[] repeat times on raw and
// reports the rate of message bytes the server sent.
func timeBodies(raw *rawIMAP, n, repeat int) ([][2]string, error) {
	var rows [][2]string
	var best float64
	for i := range repeat {
		raw.literalBytes = 0
		start := time.Now()
		got, err := raw.command(fmt.Sprintf("b%d UID FETCH 1:* BODY.PEEK[]", i))
		if err != nil {
			return nil, err
		}
		d := time.Since(start)
		if got != n {
			return nil, fmt.Errorf("FETCH BODY.PEEK[] returned %d of %d messages", got, n)
		}
		rate := float64(raw.literalBytes) / d.Seconds() / 1e6
		best = max(best, rate)
		rows = append(rows, [2]string{fmt.Sprintf("UID FETCH 1:* BODY.PEEK[] run %d", i+1),
			fmt.Sprintf("%v, %.0f MB, %.0f MB/s", d.Round(time.Millisecond), float64(raw.literalBytes)/1e6, rate)})
	}
	rows = append(rows, [2]string{"BODY.PEEK[] best", fmt.Sprintf("%.0f MB/s", best)})
	return rows, nil
}

// fillFolder APPENDs n messages, gen(0) to gen(n-1), over conc connections.
func fillFolder(addr, user, pass, folder string, n, conc int, gen func(i int) []byte) error {
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	per := (n + conc - 1) / conc
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialIMAP(addr, user, pass, nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Logout()
			for i := w * per; i < min(n, (w+1)*per); i++ {
				if err := appendMessage(c, folder, gen(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	d := time.Since(start)
	report("fill", [][2]string{{"appended", fmt.Sprintf("%d in %v (%.0f/s)", n, d.Round(time.Millisecond), float64(n)/d.Seconds())}})
	return nil
}
