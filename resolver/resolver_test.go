package resolver

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/internal/testdns"
)

// clock is a settable time for the cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newResolver(t *testing.T, srv *testdns.Server, timeout time.Duration) (*Resolver, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	r, err := New(Options{Server: srv.Addr, Timeout: timeout, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 250)
	srv := testdns.New(t,
		`contoso.test. TXT "v=spf1 " "-all"`,
		`contoso.test. MX 20 mx2.contoso.test.`,
		`contoso.test. MX 10 mx1.contoso.test.`,
		`mx1.contoso.test. A 192.0.2.1`,
		`mx1.contoso.test. AAAA 2001:db8::1`,
		`www.contoso.test. CNAME mx1.contoso.test.`,
		`big.contoso.test. TXT "`+strings.Repeat(long+`" "`, 24)+`end"`,
		`1.2.0.192.in-addr.arpa. PTR mx1.contoso.test.`,
	)
	r, _ := newResolver(t, srv, time.Second)
	ctx := context.Background()
	txt, err := r.LookupTXT(ctx, "Contoso.test")
	if err != nil || !slices.Equal(txt, []string{"v=spf1 -all"}) {
		t.Fatalf("TXT %q %v", txt, err)
	}
	mx, err := r.LookupMX(ctx, "contoso.test")
	if err != nil || len(mx) != 2 || mx[0].Host != "mx1.contoso.test." || mx[1].Pref != 20 {
		t.Fatalf("MX %v %v", mx, err)
	}
	ips, err := r.LookupNetIP(ctx, "ip", "www.contoso.test")
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if err != nil || !slices.Equal(ips, want) {
		t.Fatalf("addresses through a CNAME %v %v", ips, err)
	}
	// More than 4096 bytes: truncated over UDP, asked again over TCP.
	big, err := r.LookupTXT(ctx, "big.contoso.test")
	if err != nil || len(big) != 1 || len(big[0]) != 24*250+3 {
		t.Fatalf("big TXT: %d records, %v", len(big), err)
	}
	names, err := r.LookupAddr(ctx, "192.0.2.1")
	if err != nil || !slices.Equal(names, []string{"mx1.contoso.test."}) {
		t.Fatalf("PTR %v %v", names, err)
	}
	if ips, err := r.LookupNetIP(ctx, "ip4", "localhost"); err != nil || ips[0] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("localhost %v %v", ips, err)
	}
	if srv.Asked("localhost", "A") != 0 {
		t.Fatal("localhost was asked of DNS")
	}
}

// TestNoneAndFailureAreTold: "there is none" and "there was no answer"
// are different errors, and both are bare *net.DNSError values, which the
// SPF and DKIM libraries type-assert.
func TestNoneAndFailureAreTold(t *testing.T) {
	t.Parallel()
	srv := testdns.New(t, `contoso.test. MX 10 mx.contoso.test.`, `broken.test. TXT "x"`, `silent.test. TXT "x"`)
	srv.ServFail("broken.test", true)
	srv.Silence("silent.test", true)
	r, _ := newResolver(t, srv, 500*time.Millisecond)
	ctx := context.Background()
	for _, c := range []struct {
		name, host        string
		notFound, timeout bool
	}{
		{"nxdomain", "nowhere.test", true, false},
		{"no records of the type", "contoso.test", true, false},
		{"servfail", "broken.test", false, false},
		{"no answer", "silent.test", false, true},
	} {
		start := time.Now()
		_, err := r.LookupTXT(ctx, c.host)
		took := time.Since(start)
		d, ok := err.(*net.DNSError)
		if !ok {
			t.Fatalf("%s: %T %v, want a bare *net.DNSError", c.name, err, err)
		}
		if IsNotFound(err) != c.notFound || IsTemporary(err) == c.notFound || d.Temporary() == c.notFound || d.IsTimeout != c.timeout {
			t.Errorf("%s: %+v", c.name, d)
		}
		if c.timeout && (took < 500*time.Millisecond || took > 2*time.Second) {
			t.Errorf("%s: took %v with a 500ms bound", c.name, took)
		}
		if c.name == "servfail" && took > 400*time.Millisecond {
			t.Errorf("servfail took %v: it should end the lookup at once", took)
		}
	}
}

func TestCacheKeepsAnswersForTheirTTL(t *testing.T) {
	t.Parallel()
	srv := testdns.New(t, `contoso.test. 300 TXT "v=spf1 -all"`, `fails.test. TXT "x"`,
		`sel._domainkey.contoso.test. CNAME key.provider.example.`, `key.provider.example. TXT "v=DKIM1; p=x"`)
	r, clk := newResolver(t, srv, time.Second)
	ctx := context.Background()
	for range 3 {
		if _, err := r.LookupTXT(ctx, "contoso.test"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.LookupTXT(ctx, "nowhere.test"); !IsNotFound(err) {
			t.Fatal(err)
		}
	}
	if n, m := srv.Asked("contoso.test", "TXT"), srv.Asked("nowhere.test", "TXT"); n != 1 || m != 1 {
		t.Fatalf("asked %d and %d times, want once each", n, m)
	}
	// A CNAME is remembered too (DKIM keys often sit behind one).
	for range 2 {
		if txt, err := r.LookupTXT(ctx, "sel._domainkey.contoso.test"); err != nil || len(txt) != 1 {
			t.Fatalf("through a CNAME: %v %v", txt, err)
		}
	}
	if n := srv.Asked("sel._domainkey.contoso.test", "TXT"); n != 1 {
		t.Fatalf("CNAME asked %d times", n)
	}
	clk.add(299 * time.Second)
	r.LookupTXT(ctx, "contoso.test")
	clk.add(2 * time.Second)
	r.LookupTXT(ctx, "contoso.test")
	if n := srv.Asked("contoso.test", "TXT"); n != 2 {
		t.Fatalf("asked %d times across the TTL, want 2", n)
	}
	// A failure is not remembered: the next lookup asks again.
	srv.ServFail("fails.test", true)
	if _, err := r.LookupTXT(ctx, "fails.test"); !IsTemporary(err) {
		t.Fatal(err)
	}
	srv.ServFail("fails.test", false)
	if txt, err := r.LookupTXT(ctx, "fails.test"); err != nil || txt[0] != "x" {
		t.Fatalf("after recovery: %v %v", txt, err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newCache(4)
	now := time.Now()
	for i := range 10 {
		c.put(cacheKey{name: strings.Repeat("a", i+1), qtype: 1}, entry{expires: now.Add(time.Minute)}, now)
		if len(c.entries) > 4 {
			t.Fatalf("%d entries", len(c.entries))
		}
	}
}

func TestBadServer(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Server: "127.0.0.1"}); err == nil {
		t.Fatal("a server without port was accepted")
	}
	r, err := New(Options{})
	if err != nil || len(r.Servers()) == 0 {
		t.Fatalf("system resolver: %v %v", r, err)
	}
}

func TestHostsFile(t *testing.T) {
	t.Parallel()
	hosts := parseHosts(strings.NewReader("# comment\n192.0.2.7 relay.internal Relay\n2001:db8::7 relay.internal # v6\nbad line\nnot-an-ip name\n"))
	r := &Resolver{hosts: hosts}
	ips, err := r.LookupNetIP(context.Background(), "ip", "RELAY.internal.")
	if err != nil || !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")}) {
		t.Fatalf("%v %v", ips, err)
	}
	if ips := r.fromHosts("ip6", "relay"); len(ips) != 0 {
		t.Fatalf("alias relay has only an IPv4 address, got %v", ips)
	}
}

func FuzzParseHosts(f *testing.F) {
	f.Add("127.0.0.1 localhost\n::1 localhost ip6-localhost # x\n")
	f.Fuzz(func(t *testing.T, s string) {
		for name, ips := range parseHosts(strings.NewReader(s)) {
			if name == "" || strings.ContainsAny(name, " \t#") || len(ips) == 0 {
				t.Fatalf("%q: %q %v", s, name, ips)
			}
		}
	})
}
