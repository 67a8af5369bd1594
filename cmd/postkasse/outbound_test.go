package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	msgdkim "github.com/emersion/go-msgauth/dkim"

	"postkasse.dev/postkasse/dkim"
)

// TestOutboundViaMXWithDKIMAndBounce sends through submission to a remote
// domain whose MX (served by a loopback DNS server) is a sink: the message
// arrives DKIM-signed, and a refused recipient comes back as a DSN in the
// sender's INBOX.
func TestOutboundViaMXWithDKIMAndBounce(t *testing.T) {
	t.Parallel()
	sk := newSink(t, "127.0.0.1")
	_, portStr, _ := net.SplitHostPort(sk.addr)
	port, _ := strconv.Atoi(portStr)
	pemBytes, signer, err := dkim.GenerateKey(0)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "contoso.pem")
	os.WriteFile(keyPath, pemBytes, 0o600)
	name, value, err := dkim.TXTRecord("pk1", "contoso.test", signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	zone := newDNSZone(t,
		"fabrikam.example. MX 10 mx.fabrikam.example.",
		"mx.fabrikam.example. A 127.0.0.1",
		fmt.Sprintf("%s. TXT %q", name, value),
	)
	ts := startServerPort(t, fmt.Sprintf("[outbound]\nresolver = %q\nretry_after = \"200ms\"\n[dkim.\"contoso.test\"]\nselector = \"pk1\"\nkey = %q\n", zone.addr, keyPath), port)

	msg := "From: Anna <anna@contoso.test>\nTo: partner@fabrikam.example, reject-me@fabrikam.example\nSubject: proposal\n\nLet us talk.\n"
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example", "reject-me@fabrikam.example"}, msg); err != nil {
		t.Fatal(err)
	}
	got := sk.wait(t, 1)[0]
	if got.From != "anna@contoso.test" || len(got.To) != 1 || got.To[0] != "partner@fabrikam.example" {
		t.Fatalf("remote got from %q to %v", got.From, got.To)
	}
	for _, want := range []string{"Message-ID:", "Date:", "DKIM-Signature:"} {
		if !strings.Contains(got.Data, want) {
			t.Errorf("remote copy lacks %s:\n%s", want, got.Data)
		}
	}
	verifications, err := msgdkim.VerifyWithOptions(bytes.NewReader([]byte(got.Data)), &msgdkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) { return zone.txt(domain), nil },
	})
	if err != nil || len(verifications) != 1 || verifications[0].Err != nil || verifications[0].Domain != "contoso.test" {
		t.Fatalf("DKIM verification: %+v %v", verifications, err)
	}

	// The refused recipient: one DSN in anna's INBOX.
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sel, err := c.Select("INBOX", nil).Wait()
		if err == nil && sel.NumMessages == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no DSN in the sender's INBOX: %+v %v", sel, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dsn, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	text := string(dsn[0].FindBodySection(&goimap.FetchItemBodySection{Peek: true}))
	for _, want := range []string{"multipart/report", "reject-me@fabrikam.example", "no such user here", "Action: failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("DSN lacks %q:\n%s", want, text)
		}
	}
}

// TestQueueCommandAndRestart queues mail for a host that does not answer,
// lists and deletes it with `postkasse queue`, and checks queued mail
// survives a restart and is delivered once the host answers.
func TestQueueCommandAndRestart(t *testing.T) {
	t.Parallel()
	sk := newSink(t, "127.0.0.1")
	down := freePort(t) // nothing listens here
	ts := startServer(t, fmt.Sprintf("[outbound]\nsmarthost = %q\nsmarthost_tls = \"none\"\nretry_after = \"100ms\"\n", down))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(ts.dir, "data", controlSocketName)
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	go serveControl(ctx, ln, ts.srv, ts.srv.log)

	for _, rcpt := range []string{"keep@fabrikam.example", "drop@fabrikam.example"} {
		if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{rcpt}, "From: anna@contoso.test\nSubject: "+rcpt+"\n\nx\n"); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"queue", "-config", ts.cfgPath, "list"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("queue list: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "keep@fabrikam.example") || !strings.Contains(out.String(), "2 queued") {
		t.Fatalf("queue list:\n%s", out.String())
	}
	msgs, _ := ts.srv.store.QueueList(ctx)
	var dropID uint64
	for _, m := range msgs {
		if m.Recipients[0].Address == "drop@fabrikam.example" {
			dropID = m.ID
		}
	}
	if code := run([]string{"queue", "-config", ts.cfgPath, "delete", fmt.Sprint(dropID)}, nil, &out, &errOut); code != 0 {
		t.Fatalf("queue delete: %s", errOut.String())
	}
	cancel()

	// Restart with the smarthost up: the queued message is delivered, once.
	ts.stop()
	ts.writeConfig(baseConfig + fmt.Sprintf("[outbound]\nsmarthost = %q\nsmarthost_tls = \"none\"\nretry_after = \"100ms\"\n", sk.addr))
	ts.start()
	got := sk.wait(t, 1)
	time.Sleep(300 * time.Millisecond)
	if n := len(sk.messages()); n != 1 || got[0].To[0] != "keep@fabrikam.example" {
		t.Fatalf("after restart the sink got %d messages: %+v", n, got)
	}
}
