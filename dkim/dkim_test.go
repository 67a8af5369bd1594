//go:debug rsa1024min=0

package dkim

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// testKeys are made once: RSA generation is slow and the tests only read them.
var testKeys = sync.OnceValues(func() (*rsa.PrivateKey, ed25519.PrivateKey) {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	_, e, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return r, e
})

// verifyWith checks msg's signatures against the TXT records made for keys.
func verifyWith(t *testing.T, msg []byte, domain string, keys map[string]Key) []*msgauth.Verification {
	t.Helper()
	txt := map[string]string{}
	for d, k := range keys {
		name, value, err := TXTRecord(k.Selector, d, k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		txt[name] = value
	}
	verifs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if v, ok := txt[name]; ok {
				return []string{v}, nil
			}
			return nil, errors.New("no such record " + name)
		},
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return verifs
}

const sample = "From: Anna Andersen <Anna@Contoso.TEST>\r\n" +
	"To: bo@fabrikam.example\r\n" +
	"Subject: Quarterly numbers\r\n" +
	"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n" +
	"Message-ID: <1@contoso.test>\r\n" +
	"Received: from somewhere\r\n" +
	"\r\n" +
	"Hello Bo,\r\n\r\nthe numbers are attached.\r\n"

func TestSignVerifies(t *testing.T) {
	t.Parallel()
	rsaKey, edKey := testKeys()
	tests := []struct {
		name   string
		signer crypto.Signer
	}{
		{"rsa", rsaKey},
		{"ed25519", edKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys := map[string]Key{"contoso.test": {Selector: "pk1", Signer: tt.signer}}
			signed, err := NewSigner(keys).Sign([]byte(sample))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(signed, []byte("Dkim-Signature: ")) && !bytes.HasPrefix(signed, []byte("DKIM-Signature: ")) {
				t.Fatalf("no signature prepended:\n%s", signed)
			}
			if !bytes.HasSuffix(signed, []byte(sample)) {
				t.Fatal("message changed beyond the prepended field")
			}
			verifs := verifyWith(t, signed, "contoso.test", keys)
			if len(verifs) != 1 || verifs[0].Err != nil {
				t.Fatalf("verifications %+v", verifs[0])
			}
			v := verifs[0]
			if v.Domain != "contoso.test" {
				t.Errorf("d= %q", v.Domain)
			}
			joined := strings.ToLower(strings.Join(v.HeaderKeys, ":"))
			for _, want := range []string{"from", "to", "subject", "date", "message-id"} {
				if !strings.Contains(joined, want) {
					t.Errorf("h= %q lacks %s", joined, want)
				}
			}
			if strings.Contains(joined, "received") {
				t.Errorf("h= %q signs a trace field", joined)
			}
			// Relaxed canonicalization survives whitespace changes in transit...
			relaxed := bytes.Replace(signed, []byte("Subject: Quarterly"), []byte("Subject:  Quarterly"), 1)
			if v := verifyWith(t, relaxed, "contoso.test", keys); v[0].Err != nil {
				t.Errorf("relaxed change broke the signature: %v", v[0].Err)
			}
			// ...but not a changed subject.
			tampered := bytes.Replace(signed, []byte("Quarterly"), []byte("Annual"), 1)
			if v := verifyWith(t, tampered, "contoso.test", keys); v[0].Err == nil {
				t.Error("tampered subject still verifies")
			}
		})
	}
}

func TestSignLeavesOthersUnchanged(t *testing.T) {
	t.Parallel()
	rsaKey, _ := testKeys()
	s := NewSigner(map[string]Key{"Contoso.Test": {Selector: "pk1", Signer: rsaKey}})
	tests := []struct {
		name string
		msg  string
		sign bool
	}{
		{"other domain", strings.Replace(sample, "Contoso.TEST", "fabrikam.example", 1), false},
		{"no from", "To: x@contoso.test\r\n\r\nbody\r\n", false},
		{"unparsable from", "From: <<<\r\n\r\nbody\r\n", false},
		{"not a header", " leading space\r\n\r\n", false},
		{"empty", "", false},
		{"subdomain is not the domain", strings.Replace(sample, "Contoso.TEST", "mail.contoso.test", 1), false},
		{"key domain matches case-insensitively", sample, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := s.Sign([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			if signed := !bytes.Equal(out, []byte(tt.msg)); signed != tt.sign {
				t.Fatalf("signed = %v, want %v:\n%s", signed, tt.sign, out)
			}
		})
	}
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKey(t *testing.T) {
	t.Parallel()
	rsaKey, edKey := testKeys()
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	small, err := rsa.GenerateKey(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		want    crypto.PublicKey
		wantErr error
	}{
		{"pkcs1 rsa", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey.Public(), nil},
		{"pkcs8 rsa", writePEM(t, "PRIVATE KEY", pkcs8(rsaKey)), rsaKey.Public(), nil},
		{"pkcs8 ed25519", writePEM(t, "PRIVATE KEY", pkcs8(edKey)), edKey.Public(), nil},
		{"short rsa", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), nil, ErrUnsupportedKey},
		{"ecdsa", writePEM(t, "PRIVATE KEY", pkcs8(ec)), nil, ErrUnsupportedKey},
		{"certificate block", writePEM(t, "CERTIFICATE", []byte{1, 2, 3}), nil, ErrUnsupportedKey},
		{"garbage der", writePEM(t, "PRIVATE KEY", []byte{1, 2, 3}), nil, nil},
		{"missing file", filepath.Join(t.TempDir(), "nope.pem"), nil, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := LoadKey(tt.path)
			if tt.want == nil {
				if err == nil {
					t.Fatal("no error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if eq, ok := tt.want.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(s.Public()) {
				t.Fatal("loaded a different key")
			}
		})
	}
	if _, err := ParseKey([]byte("not pem")); err == nil {
		t.Error("ParseKey accepted text without PEM")
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	pemBytes, signer, err := GenerateKey(1024)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.Public().(*rsa.PublicKey).Equal(again.Public()) {
		t.Fatal("PEM holds a different key than the signer")
	}
	if _, _, err := GenerateKey(512); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("512 bits: %v", err)
	}
}

func TestGenerateKeyDefaultSize(t *testing.T) {
	t.Parallel()
	_, signer, err := GenerateKey(0)
	if err != nil {
		t.Fatal(err)
	}
	if n := signer.Public().(*rsa.PublicKey).N.BitLen(); n != DefaultBits {
		t.Fatalf("%d bits", n)
	}
}

func TestTXTRecord(t *testing.T) {
	t.Parallel()
	rsaKey, edKey := testKeys()
	der, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, selector, domain string
		pub                    crypto.PublicKey
		wantName, wantValue    string
	}{
		{"rsa", "pk1", "Contoso.Test.", rsaKey.Public(), "pk1._domainkey.contoso.test",
			"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)},
		{"ed25519", "ed", "contoso.test", edKey.Public(), "ed._domainkey.contoso.test",
			"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edKey.Public().(ed25519.PublicKey))},
		{"no selector", "", "contoso.test", rsaKey.Public(), "", ""},
		{"no domain", "pk1", "", rsaKey.Public(), "", ""},
		{"unsupported key", "pk1", "contoso.test", "not a key", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, value, err := TXTRecord(tt.selector, tt.domain, tt.pub)
			if tt.wantName == "" {
				if err == nil {
					t.Fatalf("no error, got %q %q", name, value)
				}
				return
			}
			if err != nil || name != tt.wantName || value != tt.wantValue {
				t.Fatalf("got %q %q %v, want %q %q", name, value, err, tt.wantName, tt.wantValue)
			}
		})
	}
}

// FuzzSign feeds arbitrary messages to the signer: it must never panic, and
// whatever it signs must verify.
func FuzzSign(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("From: a@contoso.test\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?q?x?= <a@contoso.test>, b@other\r\nSubject: \r\n \r\n\r\n.\r\n"))
	f.Add([]byte("From: a@contoso.test\nbare: lf\n\nbody"))
	_, edKey := testKeys()
	keys := map[string]Key{"contoso.test": {Selector: "pk1", Signer: edKey}}
	s := NewSigner(keys)
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := s.Sign(msg)
		if err != nil || bytes.Equal(out, msg) {
			return
		}
		if !bytes.HasSuffix(out, msg) {
			t.Fatal("signing changed the message")
		}
		verifs := verifyWith(t, out, "contoso.test", keys)
		if len(verifs) == 0 {
			t.Fatal("signed message without a signature")
		}
		for _, v := range verifs {
			if v.Domain == "contoso.test" && v.Err != nil {
				t.Fatalf("own signature fails: %v\n%q", v.Err, out)
			}
		}
	})
}
