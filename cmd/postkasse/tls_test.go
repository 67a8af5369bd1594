package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// selfSigned writes a certificate for mail.contoso.test and returns the
// paths and a client configuration that trusts it.
func selfSigned(t *testing.T) (certPath, keyPath string, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.contoso.test"},
		DNSNames: []string{"mail.contoso.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, &tls.Config{RootCAs: pool, ServerName: "mail.contoso.test"}
}

// TestTLSListenersAndPlaintextAuth: with allow_insecure_auth off, nobody
// authenticates in the clear, not even on loopback; STARTTLS and implicit
// TLS work for IMAP and submission.
func TestTLSListenersAndPlaintextAuth(t *testing.T) {
	t.Parallel()
	certPath, keyPath, clientTLS := selfSigned(t)
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
