package mailauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"postkasse.dev/postkasse/internal/testdns"
	"postkasse.dev/postkasse/resolver"
)

// The test world: contoso.test is ours; the others are outside senders
// whose mail servers are at the addresses below.
var (
	ipFabrikam = netip.MustParseAddr("192.0.2.10")
	ipContoso  = netip.MustParseAddr("192.0.2.20")
	ipAttacker = netip.MustParseAddr("198.51.100.66")
)

type world struct {
	dns  *testdns.Server
	keys map[string]ed25519.PrivateKey // by domain; selector "sel"
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{keys: map[string]ed25519.PrivateKey{}}
	w.dns = testdns.New(t,
		`contoso.test. TXT "v=spf1 ip4:192.0.2.20 -all"`,
		`_dmarc.contoso.test. TXT "v=DMARC1; p=reject"`,
		`fabrikam.example. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.fabrikam.example. TXT "v=DMARC1; p=reject"`,
		`bounce.fabrikam.example. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`soft.example. TXT "v=spf1 ~all"`,
		`nospf.example. A 192.0.2.99`,
		`quarantine.example. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.quarantine.example. TXT "v=DMARC1; p=quarantine"`,
		`half.example. TXT "v=spf1 -all"`,
		`_dmarc.half.example. TXT "v=DMARC1; p=reject; pct=50"`,
		`strict.example. TXT "v=spf1 -all"`,
		`_dmarc.strict.example. TXT "v=DMARC1; p=reject; aspf=s"`,
		`mail.strict.example. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.sp.example. TXT "v=DMARC1; p=none; sp=reject"`,
		`sub.sp.example. TXT "v=spf1 -all"`,
		`attacker.example. TXT "v=spf1 ip4:198.51.100.66 -all"`,
		`mx.attacker.example. A 198.51.100.66`,
		`slow.example. TXT "v=spf1 -all"`,
	)
	w.dns.Silence("slow.example", true)
	for _, d := range []string{"fabrikam.example", "contoso.test", "attacker.example"} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		w.keys[d] = priv
		w.dns.Add(t, `sel._domainkey.`+d+`. TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(pub)+`"`)
	}
	return w
}

func (w *world) checker(t *testing.T, mod func(*Options)) *Checker {
	t.Helper()
	r, err := resolver.New(resolver.Options{Server: w.dns.Addr, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Hostname: "mail.contoso.test", Resolver: r, SPF: true, DKIM: true, DMARC: true,
		OwnDomain: func(d string) bool { return d == "contoso.test" },
		Sample:    func(int) int { return 70 }, // outside pct=50
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// message returns a message from from; signed by signer's key when
// signer is not "", and then altered when alter is set.
func (w *world) message(t *testing.T, from, signer string, alter bool) []byte {
	t.Helper()
	msg := []byte("From: " + from + "\r\nTo: info@contoso.test\r\nSubject: hello\r\nDate: Fri, 04 Dec 2026 12:00:00 +0000\r\n\r\nHello there.\r\n")
	if signer != "" {
		var b bytes.Buffer
		err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{Domain: signer, Selector: "sel", Signer: w.keys[signer]})
		if err != nil {
			t.Fatal(err)
		}
		msg = b.Bytes()
	}
	if alter {
		msg = bytes.Replace(msg, []byte("Hello there."), []byte("Send money."), 1)
	}
	return msg
}

func TestChecks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.checker(t, nil)
	for _, tc := range []struct {
		name           string
		ip             netip.Addr
		helo, mailFrom string
		from, signer   string
		alter          bool
		spf            Result
		dkim           []Result
		dmarc          Result
		action         Action
	}{
		{"all pass", ipFabrikam, "mx.fabrikam.example", "bob@fabrikam.example", "bob@fabrikam.example", "fabrikam.example", false, Pass, []Result{Pass}, Pass, Accept},
		{"spf fail, dkim pass: dmarc pass", ipAttacker, "x", "bob@fabrikam.example", "bob@fabrikam.example", "fabrikam.example", false, Fail, []Result{Pass}, Pass, Accept},
		{"altered after signing: reject", ipAttacker, "x", "bob@fabrikam.example", "bob@fabrikam.example", "fabrikam.example", true, Fail, []Result{Fail}, Fail, Reject},
		{"spf relaxed alignment", ipFabrikam, "x", "bounces@bounce.fabrikam.example", "bob@fabrikam.example", "", false, Pass, nil, Pass, Accept},
		{"spf strict alignment fails", ipFabrikam, "x", "a@mail.strict.example", "bob@strict.example", "", false, Pass, nil, Fail, Reject},
		{"softfail, no policy", ipAttacker, "x", "a@soft.example", "a@soft.example", "", false, SoftFail, nil, None, Accept},
		{"no spf record", ipAttacker, "x", "a@nospf.example", "a@nospf.example", "", false, None, nil, None, Accept},
		{"quarantine", ipAttacker, "x", "a@quarantine.example", "a@quarantine.example", "", false, Fail, nil, Fail, Junk},
		{"pct leaves reject as quarantine", ipAttacker, "x", "a@half.example", "a@half.example", "", false, Fail, nil, Fail, Junk},
		{"sp of the organisational domain", ipAttacker, "x", "a@sub.sp.example", "a@sub.sp.example", "", false, Fail, nil, Fail, Reject},
		{"null sender: helo checked", ipFabrikam, "fabrikam.example", "", "bob@fabrikam.example", "", false, Pass, nil, Pass, Accept},
		{"signed by a third party: dmarc fail", ipAttacker, "x", "a@attacker.example", "bob@fabrikam.example", "attacker.example", false, Pass, []Result{Pass}, Fail, Reject},
		// The own-domain rule (SPEC §11).
		{"own MAIL FROM without spf pass", ipAttacker, "x", "anna@contoso.test", "x@attacker.example", "", false, Fail, nil, None, Reject},
		{"own From, attacker's MAIL FROM passes spf", ipAttacker, "x", "a@attacker.example", "anna@contoso.test", "", false, Pass, nil, Fail, Reject},
		{"own From with valid contoso dkim", ipAttacker, "x", "a@attacker.example", "anna@contoso.test", "contoso.test", false, Pass, []Result{Pass}, Pass, Accept},
		{"own From with contoso spf pass", ipContoso, "x", "anna@contoso.test", "anna@contoso.test", "", false, Pass, nil, Pass, Accept},
		// DNS failures are temporary, never a pass or a refusal.
		{"spf dns timeout", ipAttacker, "x", "a@slow.example", "a@soft.example", "", false, TempError, nil, None, Defer},
		{"dmarc dns timeout", ipFabrikam, "x", "bob@fabrikam.example", "a@slow.example", "", false, Pass, nil, TempError, Defer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := Envelope{IP: tc.ip, Helo: tc.helo, MailFrom: tc.mailFrom}
			s := c.CheckSPF(ctx, env)
			rep := c.CheckMessage(ctx, env, s, w.message(t, tc.from, tc.signer, tc.alter))
			var dk []Result
			for _, d := range rep.DKIM {
				dk = append(dk, d.Result)
			}
			if tc.dkim == nil {
				tc.dkim = []Result{}
			}
			if dk == nil {
				dk = []Result{}
			}
			if rep.SPF.Result != tc.spf || !slices.Equal(dk, tc.dkim) || rep.Verdict.Action != tc.action {
				t.Fatalf("spf %s (%s), dkim %v %+v, dmarc %+v: %v %q; want spf %s, dkim %v, %v",
					rep.SPF.Result, rep.SPF.Reason, dk, rep.DKIM, rep.DMARC, rep.Verdict.Action, rep.Verdict.Reason, tc.spf, tc.dkim, tc.action)
			}
			if rep.DMARC.Result != tc.dmarc {
				t.Fatalf("dmarc %+v, want %s", rep.DMARC, tc.dmarc)
			}
		})
	}
}

func TestMailVerdict(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		ip     netip.Addr
		from   string
		spfOn  bool
		action Action
	}{
		{"own domain, spf pass", ipContoso, "anna@contoso.test", true, Accept},
		{"own domain from outside", ipAttacker, "anna@contoso.test", true, Reject},
		{"own domain, spf switched off", ipContoso, "anna@contoso.test", false, Reject},
		{"other domain failing spf: judged after DATA", ipAttacker, "bob@fabrikam.example", true, Accept},
		{"null sender", ipAttacker, "", true, Accept},
	} {
		c := w.checker(t, func(o *Options) { o.SPF = tc.spfOn })
		env := Envelope{IP: tc.ip, Helo: "mx.example", MailFrom: tc.from}
		v := c.MailVerdict(env, c.CheckSPF(ctx, env))
		if v.Action != tc.action {
			t.Errorf("%s: %v %q, want %v", tc.name, v.Action, v.Reason, tc.action)
		}
		if code, enh, _ := v.Reply(); v.Action == Reject && (code != 550 || enh != [3]int{5, 7, 1}) {
			t.Errorf("%s: reply %d %v", tc.name, code, enh)
		}
	}
	w.dns.ServFail("contoso.test", true)
	c := w.checker(t, nil)
	env := Envelope{IP: ipContoso, Helo: "mx.example", MailFrom: "anna@contoso.test"}
	v := c.MailVerdict(env, c.CheckSPF(ctx, env))
	if code, enh, _ := v.Reply(); v.Action != Defer || code != 451 || enh != [3]int{4, 7, 0} {
		t.Fatalf("SERVFAIL for an own-domain sender: %v %d %v", v.Action, code, enh)
	}
}

func TestSwitchedOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.checker(t, func(o *Options) { o.SPF, o.DKIM, o.DMARC = false, false, false })
	env := Envelope{IP: ipAttacker, Helo: "x", MailFrom: "a@slow.example"}
	rep := c.CheckMessage(context.Background(), env, c.CheckSPF(context.Background(), env), w.message(t, "a@fabrikam.example", "", false))
	if rep.Verdict.Action != Accept || rep.SPF.Result != NotChecked || rep.DKIM != nil || rep.DMARC.Result != NotChecked {
		t.Fatalf("%+v", rep)
	}
	if h := rep.Header(); h != "Authentication-Results: mail.contoso.test; none\r\n" {
		t.Fatalf("header %q", h)
	}
	if n := w.dns.Asked("slow.example", "TXT") + w.dns.Asked("_dmarc.fabrikam.example", "TXT"); n != 0 {
		t.Fatalf("%d lookups with every check off", n)
	}
}
