package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// BenchmarkCheck is the work of one message from outside: SPF at MAIL,
// then DKIM (one signature over a 4 KiB message), DMARC and the stamp,
// with every DNS answer already cached, as under load. Ed25519 and RSA
// (2048 bits, what most senders use) verify at different costs.
func BenchmarkCheck(b *testing.B) {
	w := newWorld(b)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	p := base64.StdEncoding.EncodeToString(der)
	w.dns.Add(b, `rsa._domainkey.fabrikam.example. TXT "v=DKIM1; k=rsa; p=`+p[:200]+`" "`+p[200:]+`"`)
	c := w.checker(b, nil)
	body := "From: bob@fabrikam.example\r\nTo: info@contoso.test\r\nSubject: hello\r\n\r\n" + strings.Repeat("The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n", 60)
	env := Envelope{IP: ipFabrikam, Helo: "mx.fabrikam.example", MailFrom: "bob@fabrikam.example"}
	for _, k := range []struct {
		name, selector string
		signer         crypto.Signer
	}{{"ed25519", "sel", w.keys["fabrikam.example"]}, {"rsa2048", "rsa", rsaKey}} {
		b.Run(k.name, func(b *testing.B) {
			var signed bytes.Buffer
			opts := &dkim.SignOptions{Domain: "fabrikam.example", Selector: k.selector, Signer: k.signer}
			if err := dkim.Sign(&signed, strings.NewReader(body), opts); err != nil {
				b.Fatal(err)
			}
			msg := signed.Bytes()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				spf := c.CheckSPF(ctx, env)
				rep := c.CheckMessage(ctx, env, spf, msg)
				if rep.Verdict.Action != Accept || rep.DKIM[0].Result != Pass {
					b.Fatal(rep.Verdict, rep.DKIM)
				}
				_ = rep.Stamp(msg)
			}
		})
	}
}
