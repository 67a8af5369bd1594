package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// watcher is one IMAP connection in IDLE that records when the folder grew.
type watcher struct {
	c    *imapclient.Client
	idle *imapclient.IdleCommand
	seen chan time.Time
}

// openWatchers logs in N connections (user(i) names the login of the i-th,
// which goes to addrs[i mod len(addrs)]), selects the folder and starts
// IDLE, with at most `parallel` logins at once.
func openWatchers(addrs []string, n int, user func(int) string, pass, folder string, parallel int) ([]*watcher, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no IMAP address")
	}
	ws := make([]*watcher, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w := &watcher{seen: make(chan time.Time, 8)}
			handler := &imapclient.UnilateralDataHandler{
				Mailbox: func(data *imapclient.UnilateralDataMailbox) {
					if data.NumMessages != nil {
						select {
						case w.seen <- time.Now():
						default:
						}
					}
				},
			}
			c, err := dialIMAP(addrs[i%len(addrs)], user(i), pass, handler)
			if err != nil {
				errs <- err
				return
			}
			w.c = c
			if _, err := c.Select(folder, nil).Wait(); err != nil {
				errs <- err
				return
			}
			if w.idle, err = c.Idle(); err != nil {
				errs <- err
				return
			}
			ws[i] = w
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		closeWatchers(ws)
		return nil, err
	}
	return ws, nil
}

// waitAll returns each watcher's delay from start to its first update.
func waitAll(ws []*watcher, start time.Time, timeout time.Duration) ([]time.Duration, error) {
	delays := make([]time.Duration, 0, len(ws))
	deadline := time.After(timeout)
	for i, w := range ws {
		select {
		case t := <-w.seen:
			delays = append(delays, t.Sub(start))
		case <-deadline:
			return delays, fmt.Errorf("only %d of %d connections saw the message", i, len(ws))
		}
	}
	return delays, nil
}

func closeWatchers(ws []*watcher) {
	for _, w := range ws {
		if w == nil {
			continue
		}
		if w.idle != nil {
			w.idle.Close()
		}
		w.c.Close()
	}
}
