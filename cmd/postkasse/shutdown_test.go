package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMFinishesTransactions sends SIGTERM to a real server process
// in the middle of an SMTP DATA: the transaction still completes with 250,
// an IMAP session gets BYE, and the process exits 0.
func TestSIGTERMFinishesTransactions(t *testing.T) {
	t.Parallel()
	cfgPath, smtpAddr, imapAddr, _ := childConfig(t)
	child := startChild(t, cfgPath, smtpAddr)

	imapConn, err := net.Dial("tcp", imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer imapConn.Close()
	imapReader := bufio.NewReader(imapConn)
	imapReader.ReadString('\n') // greeting

	conn, err := net.Dial("tcp", smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	expect := func(code string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", code, err)
			}
			if strings.HasPrefix(line, code+" ") {
				return
			}
			if !strings.HasPrefix(line, code+"-") {
				t.Fatalf("got %q, want %s", line, code)
			}
		}
	}
	expect("220")
	for _, step := range []struct{ send, want string }{
		{"EHLO client.example.org", "250"},
		{"MAIL FROM:<zoe@example.org>", "250"},
		{"RCPT TO:<anna@contoso.test>", "250"},
		{"DATA", "354"},
	} {
		fmt.Fprintf(conn, "%s\r\n", step.send)
		expect(step.want)
	}
	fmt.Fprint(conn, "Subject: in flight\r\n\r\nfirst half\r\n")
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	fmt.Fprint(conn, "second half\r\n.\r\n")
	expect("250")

	imapConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := imapReader.ReadString('\n')
	if !strings.HasPrefix(line, "* BYE") {
		t.Errorf("IMAP session got %q, want BYE", line)
	}
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("server did not stop")
	}
}
