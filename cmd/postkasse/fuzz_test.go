package main

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSMTPConversation speaks arbitrary bytes to a live MX port. Whatever
// the client sends, the server must answer the next well-formed
// transaction, and store nothing that has bare LF line endings.
func FuzzSMTPConversation(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<anna@contoso.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"))
	f.Add([]byte("HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<anna+tag@CONTOSO.test>\r\nDATA\r\nx\n.\n\r\n.\r\n"))
	f.Add([]byte("EHLO x\r\nAUTH PLAIN AGFubmEAYW5uYS1zZWNyZXQ=\r\nBDAT 5 LAST\r\nhello"))
	f.Add([]byte("\x00\xff\r\n\r\nRSET\r\nVRFY anna\r\nNOOP\r\n"))
	ts := startServer(f, "")
	f.Fuzz(func(t *testing.T, input []byte) {
		conn, err := net.Dial("tcp", ts.smtp)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		go io.Copy(io.Discard, conn)
		conn.Write(input)
		conn.Close()
		if err := ts.send("zoe@example.org", []string{"carl@contoso.test"}, message("zoe@example.org", "carl@contoso.test", "probe", "x")); err != nil {
			t.Fatalf("after %q the server refuses a good message: %v", input, err)
		}
	})
}
