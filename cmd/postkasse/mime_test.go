package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postkasse.dev/postkasse/internal/syncbuf"
)

// mimeBudget is how long delivering or fetching a hostile message may
// take under the race detector on a loaded machine. Nested readers took
// 0.7 s of CPU for 1,000 levels without it, and minutes for 8,000.
const mimeBudget = 5 * time.Second

// startServerLimits is startServer with the production message size limit
// (25 MiB) instead of the harness's 64 KiB.
func startServerLimits(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.toml"), logs: &syncbuf.Buffer{}}
	ts.writeConfig(strings.Replace(baseConfig, `message_size = "64KiB"`, `message_size = "25MiB"`, 1))
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// nestedMIME is a message nested depth deep in multiparts around one
// text part, with LF line ends (sendMail makes them CRLF).
func nestedMIME(depth int) string {
	var b strings.Builder
	b.WriteString("From: deep@example.org\nTo: anna@contoso.test\nSubject: nested\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\n\nleaf\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return b.String()
}

// manyPartsMIME is a flat multipart of n parts.
func manyPartsMIME(n int) string {
	var b strings.Builder
	b.WriteString("From: many@example.org\nTo: anna@contoso.test\nSubject: many parts\nContent-Type: multipart/mixed; boundary=\"p\"\n\n")
	for i := range n {
		fmt.Fprintf(&b, "--p\n\npart %d\n", i)
	}
	b.WriteString("--p--\n")
	return b.String()
}

// noopWatch keeps another session busy with NOOPs and records the slowest
// answer, to show that one hostile message does not stall the server.
type noopWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	slowest time.Duration
	count   int
	err     error
}

func watchNoops(c *imapclient.Client) *noopWatch {
	w := &noopWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			start := time.Now()
			err := c.Noop().Wait()
			w.mu.Lock()
			w.slowest, w.count = max(w.slowest, time.Since(start)), w.count+1
			if err != nil && w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *noopWatch) end(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil || w.count == 0 || w.slowest > mimeBudget {
		t.Errorf("other session: %d NOOPs, slowest %v, error %v", w.count, w.slowest, w.err)
	}
}

// timed runs fn and fails the test when it takes longer than mimeBudget.
func timed(t *testing.T, what string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	if took := time.Since(start); took > mimeBudget {
		t.Errorf("%s took %v, budget %v", what, took, mimeBudget)
	}
}

// TestHostileMIMEDeliveredAndFetchedInLinearTime delivers messages nested
// 100, 1,000 and 8,000 deep and one of 12,000 parts over SMTP, and
// fetches their structure, their bytes and their deepest part over IMAP,
// each within the budget while another session's NOOPs are answered.
func TestHostileMIMEDeliveredAndFetchedInLinearTime(t *testing.T) {
	t.Parallel()
	ts := startServerLimits(t)
	anna := ts.login("anna@contoso.test", "anna-secret", nil)
	other := ts.login("bo@contoso.test", "bo-secret", nil)
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		msg  string
		// check looks at the structure and returns the path of the
		// part where it stops and that part's expected content.
		check func(t *testing.T, bs goimap.BodyStructure) ([]int, string)
	}{
		{"nested 100", nestedMIME(100), checkNested(100)},
		{"nested 1000", nestedMIME(1000), checkNested(1000)},
		{"nested 8000", nestedMIME(8000), checkNested(8000)},
		{"12000 parts", manyPartsMIME(12000), checkManyParts(12000)},
	}
	for i, tc := range cases {
		seq := uint32(i + 1)
		watch := watchNoops(other)
		timed(t, tc.name+": delivery", func() {
			if err := ts.send("sender@example.org", []string{"anna@contoso.test"}, tc.msg); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		})
		if _, err := anna.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		var bs goimap.BodyStructure
		timed(t, tc.name+": FETCH BODYSTRUCTURE", func() {
			msgs, err := anna.Fetch(goimap.SeqSetNum(seq), &goimap.FetchOptions{BodyStructure: &goimap.FetchItemBodyStructure{Extended: true}}).Collect()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("%s: fetch structure: %v", tc.name, err)
			}
			bs = msgs[0].BodyStructure
		})
		path, want := tc.check(t, bs)
		whole := &goimap.FetchItemBodySection{Peek: true}
		deep := &goimap.FetchItemBodySection{Peek: true, Part: path}
		timed(t, tc.name+": FETCH BODY[] and BODY[part]", func() {
			msgs, err := anna.Fetch(goimap.SeqSetNum(seq), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{whole, deep}}).Collect()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("%s: fetch body: %v", tc.name, err)
			}
			sent := strings.ReplaceAll(tc.msg, "\n", "\r\n")
			if body := msgs[0].FindBodySection(whole); !bytes.HasSuffix(body, []byte(sent)) || !bytes.HasPrefix(body, []byte("Return-Path:")) && !bytes.HasPrefix(body, []byte("Received:")) && !bytes.HasPrefix(body, []byte("Delivered-To:")) {
				t.Errorf("%s: BODY[] is not the message as sent (%d bytes, sent %d)", tc.name, len(body), len(sent))
			}
			if got := string(msgs[0].FindBodySection(deep)); got != want {
				t.Errorf("%s: BODY[%v] = %d bytes %.60q, want %d bytes %.60q", tc.name, path, len(got), got, len(want), want)
			}
		})
		watch.end(t)
	}
}

// checkNested expects depth levels of multipart down to the limit of 100,
// and there the text leaf or, deeper, the rest as one raw part.
func checkNested(depth int) func(t *testing.T, bs goimap.BodyStructure) ([]int, string) {
	return func(t *testing.T, bs goimap.BodyStructure) ([]int, string) {
		var path []int
		for {
			mp, ok := bs.(*goimap.BodyStructureMultiPart)
			if !ok {
				break
			}
			if len(mp.Children) != 1 {
				t.Fatalf("depth %d: %d children at level %d", depth, len(mp.Children), len(path))
			}
			path = append(path, 1)
			bs = mp.Children[0]
		}
		leaf := bs.(*goimap.BodyStructureSinglePart)
		if depth <= 100 {
			if len(path) != depth || leaf.MediaType() != "text/plain" || leaf.Size != 4 {
				t.Fatalf("depth %d: %d levels, leaf %s of %d bytes", depth, len(path), leaf.MediaType(), leaf.Size)
			}
			return path, "leaf"
		}
		// The multipart at level 100 is kept as received: its content
		// runs from after its header to the newline before its parent's
		// closing delimiter.
		msg := strings.ReplaceAll(nestedMIME(depth), "\n", "\r\n")
		start := strings.Index(msg, "boundary=\"b100\"\r\n\r\n") + len("boundary=\"b100\"\r\n\r\n")
		want := msg[start : start+strings.Index(msg[start:], "\r\n--b99--")]
		if len(path) != 100 || leaf.MediaType() != "application/octet-stream" || int(leaf.Size) != len(want) {
			t.Fatalf("depth %d: %d levels, leaf %s of %d bytes, want application/octet-stream of %d", depth, len(path), leaf.MediaType(), leaf.Size, len(want))
		}
		return path, want
	}
}

// checkManyParts expects the first 9,999 parts described and the rest of
// the message as one raw part.
func checkManyParts(n int) func(t *testing.T, bs goimap.BodyStructure) ([]int, string) {
	return func(t *testing.T, bs goimap.BodyStructure) ([]int, string) {
		mp, ok := bs.(*goimap.BodyStructureMultiPart)
		if !ok || len(mp.Children) != 10000 {
			t.Fatalf("%d parts: structure %T", n, bs)
		}
		if p := mp.Children[9998].(*goimap.BodyStructureSinglePart); p.MediaType() != "text/plain" || p.Size != uint32(len("part 9998")) {
			t.Fatalf("part 9999: %s of %d bytes", p.MediaType(), p.Size)
		}
		msg := strings.ReplaceAll(manyPartsMIME(n), "\n", "\r\n")
		want := msg[strings.Index(msg, "--p\r\n\r\npart 9999\r\n")+len("--p\r\n"):]
		if p := mp.Children[9999].(*goimap.BodyStructureSinglePart); p.MediaType() != "application/octet-stream" || int(p.Size) != len(want) {
			t.Fatalf("rest: %s of %d bytes, want %d", p.MediaType(), p.Size, len(want))
		}
		return []int{10000}, want
	}
}
