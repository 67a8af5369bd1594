package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// freePort asks the kernel for a port a child process can listen on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// childConfig writes baseConfig, listening on free loopback ports, for a
// server run as a child process; it returns the file, the SMTP and IMAP
// addresses and the configuration text.
func childConfig(t *testing.T) (cfgPath, smtpAddr, imapAddr, text string) {
	t.Helper()
	dir := t.TempDir()
	smtpAddr, imapAddr = freePort(t), freePort(t)
	text = strings.ReplaceAll(baseConfig, "DATA", filepath.Join(dir, "data")) +
		fmt.Sprintf("[listen]\nsmtp = %q\nsubmission = \"\"\nimap = %q\n", smtpAddr, imapAddr)
	cfgPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, smtpAddr, imapAddr, text
}

// startChild runs `postkasse serve` in a child process and waits until its
// SMTP port answers.
func startChild(t *testing.T, cfgPath, smtpAddr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "POSTKASSE_TEST_ARGS=serve\x1f-config\x1f"+cfgPath)
	logFile, err := os.Create(filepath.Join(filepath.Dir(cfgPath), fmt.Sprintf("child-%d.log", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr, cmd.Stdout = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
	})
	// Ready means every listener is open (the log line comes after the
	// last of them), not just the SMTP port.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		logged, _ := os.ReadFile(logFile.Name())
		if bytes.Contains(logged, []byte("postkasse ready")) {
			if c, err := net.Dial("tcp", smtpAddr); err == nil {
				c.Close()
				return cmd
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("child server did not start")
	return nil
}

// TestCrashLosesNothingAcknowledged kills the server with SIGKILL while
// clients deliver concurrently; after a restart every message that got a
// 250 is there, exactly once.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	cfgPath, smtpAddr, imapAddr, _ := childConfig(t)
	child := startChild(t, cfgPath, smtpAddr)

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				subject := fmt.Sprintf("crash-%d-%d", g, i)
				if err := sendMail(smtpAddr, nil, "zoe@example.org", []string{"anna@contoso.test"}, message("zoe@example.org", "anna@contoso.test", subject, "x")); err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[subject] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 20 {
		t.Fatalf("only %d messages were acknowledged before the kill", len(acked))
	}

	startChild(t, cfgPath, smtpAddr)
	ts := &testServer{t: t, imap: imapAddr}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		t.Fatal("nothing stored")
	}
	seen := map[string]int{}
	msgs, err := c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		seen[m.Envelope.Subject]++
	}
	for subject := range acked {
		if seen[subject] != 1 {
			t.Errorf("%s acknowledged but stored %d times", subject, seen[subject])
		}
	}
	for subject, n := range seen {
		if n > 1 {
			t.Errorf("%s stored %d times", subject, n)
		}
	}
	t.Logf("%d acknowledged, %d stored after the crash", len(acked), len(msgs))
}
