package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/internal/testcert"
)

// TestTLSListenersAndPlaintextAuth: with allow_insecure_auth off, nobody
// authenticates in the clear, not even on loopback; STARTTLS and implicit
// TLS work for IMAP and submission.
func TestTLSListenersAndPlaintextAuth(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t, "mail.contoso.test", "127.0.0.1")
	certPath, keyPath := cert.WriteFiles(t, t.TempDir())
	clientTLS := cert.Client
	ts := startServer(t, fmt.Sprintf("[tls]\ncert = %q\nkey = %q\nallow_insecure_auth = false\n", certPath, keyPath))

	plain, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Login("anna@contoso.test", "anna-secret").Wait(); err == nil || !strings.Contains(err.Error(), "PRIVACYREQUIRED") {
		t.Fatalf("IMAP LOGIN without TLS: %v", err)
	}
	starttls, err := imapclient.DialStartTLS(ts.imap, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer starttls.Close()
	if err := starttls.Login("anna@contoso.test", "anna-secret").Wait(); err != nil {
		t.Fatalf("IMAP LOGIN after STARTTLS: %v", err)
	}
	implicit, err := imapclient.DialTLS(ts.imaps, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer implicit.Close()
	if err := implicit.Login("anna@contoso.test", "anna-secret").Wait(); err != nil {
		t.Fatalf("IMAPS LOGIN: %v", err)
	}

	c, err := gosmtp.Dial(ts.sub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "anna@contoso.test", "anna-secret")); err == nil {
		t.Fatal("submission AUTH without TLS accepted")
	}
	c, err = gosmtp.DialStartTLS(ts.sub, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "anna@contoso.test", "anna-secret")); err != nil {
		t.Fatalf("submission AUTH after STARTTLS: %v", err)
	}
	s, err := gosmtp.DialTLS(ts.subs, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Auth(sasl.NewPlainClient("", "anna@contoso.test", "anna-secret")); err != nil {
		t.Fatalf("submissions AUTH: %v", err)
	}
	if err := s.SendMail("anna@contoso.test", []string{"bo@contoso.test"}, strings.NewReader("From: anna@contoso.test\r\nSubject: over TLS\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("send over implicit TLS: %v", err)
	}
}
