package mailauth

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

func TestHeaderRecordsEveryResult(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.checker(t, nil)
	ctx := context.Background()
	// Two signatures: one by a domain that publishes no key, then a valid
	// one by fabrikam.
	msg := w.message(t, "bob@fabrikam.example", "fabrikam.example", false)
	msg = append([]byte("DKIM-Signature: v=1; a=ed25519-sha256; d=nokey.example; s=sel; h=from; bh=AAAA; b=AAAA\r\n"), msg...)
	env := Envelope{IP: ipFabrikam, Helo: "mx.fabrikam.example", MailFrom: "bob@fabrikam.example"}
	rep := c.CheckMessage(ctx, env, c.CheckSPF(ctx, env), msg)
	h := rep.Header()
	if !strings.HasPrefix(h, "Authentication-Results: mail.contoso.test;\r\n\t") || !strings.HasSuffix(h, "\r\n") {
		t.Fatalf("header %q", h)
	}
	id, results, err := authres.Parse(strings.TrimPrefix(strings.ReplaceAll(h, "\r\n\t", " "), "Authentication-Results: "))
	if err != nil || id != "mail.contoso.test" {
		t.Fatalf("parse %q: %v %v", h, id, err)
	}
	var got []string
	for _, r := range results {
		switch r := r.(type) {
		case *authres.SPFResult:
			got = append(got, "spf="+string(r.Value)+" "+r.From)
		case *authres.DKIMResult:
			got = append(got, "dkim="+string(r.Value)+" "+r.Domain)
		case *authres.DMARCResult:
			got = append(got, "dmarc="+string(r.Value)+" "+r.From)
		}
	}
	want := "spf=pass fabrikam.example|dkim=permerror nokey.example|dkim=pass fabrikam.example|dmarc=pass fabrikam.example"
	if strings.Join(got, "|") != want {
		t.Fatalf("results %q\nwant     %q\nheader %s", strings.Join(got, "|"), want, h)
	}
	// No signature at all: dkim=none; no DMARC record: dmarc=none.
	env = Envelope{IP: ipAttacker, Helo: "x", MailFrom: "a@soft.example"}
	rep = c.CheckMessage(ctx, env, c.CheckSPF(ctx, env), w.message(t, "a@soft.example", "", false))
	if h := rep.Header(); !strings.Contains(h, "spf=softfail smtp.mailfrom=soft.example;") || !strings.Contains(h, "dkim=none") || !strings.Contains(h, "dmarc=none header.from=soft.example") {
		t.Fatalf("header %q", h)
	}
}

func TestHeaderCannotBeInjected(t *testing.T) {
	t.Parallel()
	rep := &Report{
		authservID: "mail.contoso.test",
		SPF:        SPF{Result: PermError, Domain: "a.example\r\nX-Injected: yes", Reason: "bad\r\n\tX-Also: yes"},
		DKIM:       []DKIM{{Result: Fail, Domain: "d.example\nX-Injected: 1", Identifier: "@d\x00", Reason: strings.Repeat("long ", 100)}},
		DMARC:      DMARC{Result: None, Domain: "f.example\r\n"},
	}
	h := rep.Header()
	if strings.Count(h, "\n") != strings.Count(h, "\r\n\t")+1 || strings.Contains(h, "\nX-") || len(h) > 1000 {
		t.Fatalf("header %q", h)
	}
}

func TestStripResults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"ours removed, others kept",
			"Authentication-Results: mail.contoso.test; dkim=pass\r\nAuthentication-Results: mx.other.example; spf=pass\r\nFrom: a@b\r\n\r\nAuthentication-Results: mail.contoso.test; body\r\n",
			"Authentication-Results: mx.other.example; spf=pass\r\nFrom: a@b\r\n\r\nAuthentication-Results: mail.contoso.test; body\r\n"},
		{"folded, commented, versioned, any case",
			"X: 1\r\nauthentication-results:\r\n (forged) MAIL.contoso.test 1;\r\n\tspf=pass\r\nAUTHENTICATION-RESULTS : mail.contoso.test.; none\r\nY: 2\r\n\r\nbody",
			"X: 1\r\nY: 2\r\n\r\nbody"},
		{"after a malformed line", "From: a@b\r\nnot a header\r\nAuthentication-Results: mail.contoso.test; dmarc=pass\r\n\r\nbody", "From: a@b\r\nnot a header\r\n\r\nbody"},
		{"a similar name stays", "Authentication-Results: mail.contoso.test.evil.example; spf=pass\r\n\r\n", "Authentication-Results: mail.contoso.test.evil.example; spf=pass\r\n\r\n"},
		{"no header end", "Authentication-Results: mail.contoso.test; spf=pass", ""},
		{"nothing to do", "From: a@b\r\n\r\nbody", "From: a@b\r\n\r\nbody"},
	} {
		if got := string(StripResults([]byte(tc.in), "mail.contoso.test")); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestStrippingKeepsSignatures: mail forwarded on must still verify at
// the next receiver, so removing a forged field and adding ours at the
// top leaves every signed byte as it was.
func TestStrippingKeepsSignatures(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.checker(t, nil)
	ctx := context.Background()
	signed := w.message(t, "bob@fabrikam.example", "fabrikam.example", false)
	forged := append([]byte("Authentication-Results: mail.contoso.test; dmarc=pass\r\nAuthentication-Results: mx.fabrikam.example; spf=pass\r\n"), signed...)
	env := Envelope{IP: ipFabrikam, Helo: "mx.fabrikam.example", MailFrom: "bob@fabrikam.example"}
	rep := c.CheckMessage(ctx, env, c.CheckSPF(ctx, env), forged)
	stored := rep.Stamp(forged)
	if bytes.Count(stored, []byte("mail.contoso.test;")) != 1 || !bytes.Contains(stored, []byte("mx.fabrikam.example; spf=pass")) {
		t.Fatalf("stored:\n%s", stored)
	}
	again := c.CheckMessage(ctx, env, c.CheckSPF(ctx, env), stored)
	if len(again.DKIM) != 1 || again.DKIM[0].Result != Pass {
		t.Fatalf("signature after stripping: %+v", again.DKIM)
	}
}

func FuzzStripResults(f *testing.F) {
	f.Add([]byte("Authentication-Results: mail.contoso.test; spf=pass\r\nFrom: a@b\r\n\r\nbody"), "mail.contoso.test")
	f.Add([]byte("X: 1\r\n (x) \r\nAuthentication-Results: (c) mail.contoso.test 1; none\r\n\r\n"), "mail.contoso.test")
	f.Add([]byte("Authentication-Results"), "")
	f.Fuzz(func(t *testing.T, msg []byte, id string) {
		out := StripResults(msg, id)
		if len(out) > len(msg) {
			t.Fatalf("grew: %q -> %q", msg, out)
		}
		// Stripping twice changes nothing more.
		if again := StripResults(out, id); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", msg, out, again)
		}
	})
}

func FuzzFromDomains(f *testing.F) {
	f.Add([]byte("From: Anna <anna@contoso.test>, bo@Fabrikam.example.\r\n\r\n"))
	f.Add([]byte("From: anna@contoso.test <x@y\r\n\r\n"))
	f.Add([]byte("From: \"@\" @@ @\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, d := range fromDomains(msg) {
			if d == "" || d != strings.ToLower(d) || strings.ContainsAny(d, " <>,;@") {
				t.Fatalf("%q -> domain %q", msg, d)
			}
		}
	})
}

func TestFromDomainsOfMalformedFields(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"From: Anna <anna@Contoso.test>\r\n\r\n":           "contoso.test",
		"From: anna@contoso.test <broken\r\n\r\n":          "contoso.test",
		"From: a@x.example, anna@contoso.test\r\n\r\n":     "x.example contoso.test",
		"Subject: none\r\n\r\n":                            "",
		"From: \"Anna\" <anna@contoso.test>; junk\r\n\r\n": "contoso.test",
	} {
		if got := strings.Join(fromDomains([]byte(in)), " "); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func FuzzAuthservID(f *testing.F) {
	f.Add("mail.contoso.test; spf=pass")
	f.Add(" (comment (nested)) mail.contoso.test 1; none")
	f.Add("((((")
	f.Fuzz(func(t *testing.T, v string) {
		id := AuthservID(v)
		if strings.ContainsAny(id, " \t;") {
			t.Fatalf("%q -> %q", v, id)
		}
	})
}
