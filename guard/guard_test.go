package guard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"postkasse.dev/postkasse/internal/syncbuf"
)

// clock is a fake clock for the windows and blocks.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	attacker = netip.MustParseAddr("192.0.2.1")
	other    = netip.MustParseAddr("192.0.2.2")
	inside   = netip.MustParseAddr("10.1.2.3")
)

func newTestGuard(t *testing.T, l Limits) (*Guard, *clock, *syncbuf.Buffer) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	logs := &syncbuf.Buffer{}
	g := New(Options{Limits: l, Now: c.now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	return g, c, logs
}

func failN(g *Guard, addr netip.Addr, login string, n int) {
	for range n {
		g.Failed(addr, login)
	}
}

func TestPairBlockedAfterLimitForBlockDuration(t *testing.T) {
	t.Parallel()
	g, c, logs := newTestGuard(t, Limits{AuthFailures: 3, AuthFailuresPerIP: 100})
	failN(g, attacker, "anna@contoso.test", 2)
	if err := g.Allow(attacker, "anna@contoso.test"); err != nil {
		t.Fatalf("after 2 failures: %v", err)
	}
	g.Failed(attacker, "Anna@Contoso.test ")
	if err := g.Allow(attacker, "anna@contoso.test"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("after 3 failures: %v, want ErrBlocked", err)
	}
	if err := g.Allow(other, "anna@contoso.test"); err != nil {
		t.Errorf("same login from another address: %v", err)
	}
	if err := g.Allow(attacker, "bo@contoso.test"); err != nil {
		t.Errorf("another login from the address: %v", err)
	}
	// Failures during the block neither log nor extend it.
	failN(g, attacker, "anna@contoso.test", 5)
	c.advance(Block - time.Second)
	if err := g.Allow(attacker, "anna@contoso.test"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("just before the block ends: %v", err)
	}
	c.advance(time.Second)
	if err := g.Allow(attacker, "anna@contoso.test"); err != nil {
		t.Fatalf("after the block: %v", err)
	}
	if n := strings.Count(logs.String(), "logins blocked"); n != 1 {
		t.Errorf("block logged %d times:\n%s", n, logs)
	}
}

func TestFailuresOutsideTheWindowDoNotCount(t *testing.T) {
	t.Parallel()
	g, c, _ := newTestGuard(t, Limits{AuthFailures: 3, AuthFailuresPerIP: 100})
	failN(g, attacker, "anna", 2)
	c.advance(Window)
	failN(g, attacker, "anna", 2)
	if err := g.Allow(attacker, "anna"); err != nil {
		t.Fatalf("2+2 failures in two windows: %v", err)
	}
	g.Failed(attacker, "anna")
	if err := g.Allow(attacker, "anna"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("3 failures in one window: %v", err)
	}
}

func TestAddressBlockedAcrossLogins(t *testing.T) {
	t.Parallel()
	g, c, logs := newTestGuard(t, Limits{AuthFailures: 10, AuthFailuresPerIP: 5})
	for i := range 5 {
		g.Failed(attacker, fmt.Sprintf("user%d", i))
	}
	for _, login := range []string{"user0", "anna", "nobody"} {
		if err := g.Allow(attacker, login); !errors.Is(err, ErrBlocked) {
			t.Errorf("%s from the blocked address: %v", login, err)
		}
	}
	if err := g.Allow(other, "anna"); err != nil {
		t.Errorf("another address: %v", err)
	}
	c.advance(Block)
	if err := g.Allow(attacker, "anna"); err != nil {
		t.Errorf("after the block: %v", err)
	}
	if n := strings.Count(logs.String(), "logins blocked"); n != 1 {
		t.Errorf("block logged %d times:\n%s", n, logs)
	}
}

func TestTrustedNetworksAreExempt(t *testing.T) {
	t.Parallel()
	g, _, _ := newTestGuard(t, Limits{
		ConnectionsPerIP: 1, AuthFailures: 1, AuthFailuresPerIP: 1,
		Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	failN(g, inside, "anna", 10)
	if err := g.Allow(inside, "anna"); err != nil {
		t.Errorf("trusted login: %v", err)
	}
	for i := range 10 {
		if _, err := g.Admit(inside); err != nil {
			t.Fatalf("trusted connection %d: %v", i, err)
		}
	}
	if _, err := g.Admit(attacker); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Admit(attacker); !errors.Is(err, ErrAddressBusy) {
		t.Errorf("second connection from outside: %v", err)
	}
}

func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	g, _, logs := newTestGuard(t, Limits{ConnectionsPerIP: 2})
	r1, err1 := g.Admit(attacker)
	_, err2 := g.Admit(attacker)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	for range 3 {
		if _, err := g.Admit(attacker); !errors.Is(err, ErrAddressBusy) {
			t.Fatalf("third connection: %v", err)
		}
	}
	if _, err := g.Admit(other); err != nil {
		t.Errorf("another address: %v", err)
	}
	r1()
	r1() // a second release changes nothing
	if _, err := g.Admit(attacker); err != nil {
		t.Errorf("after one closed: %v", err)
	}
	if _, err := g.Admit(attacker); !errors.Is(err, ErrAddressBusy) {
		t.Errorf("at the limit again: %v", err)
	}
	if g.Open() != 3 {
		t.Errorf("open = %d, want 3", g.Open())
	}
	if n := strings.Count(logs.String(), "address at its limit"); n != 1 {
		t.Errorf("refusals logged %d times:\n%s", n, logs)
	}
}

func TestIPv6CountedByPrefix(t *testing.T) {
	t.Parallel()
	g, _, _ := newTestGuard(t, Limits{ConnectionsPerIP: 1, AuthFailures: 1})
	if _, err := g.Admit(netip.MustParseAddr("2001:db8:1:2::1")); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Admit(netip.MustParseAddr("2001:db8:1:2::ffff")); !errors.Is(err, ErrAddressBusy) {
		t.Errorf("same /64: %v", err)
	}
	if _, err := g.Admit(netip.MustParseAddr("2001:db8:1:3::1")); err != nil {
		t.Errorf("another /64: %v", err)
	}
	g.Failed(netip.MustParseAddr("2001:db8:1:2::1"), "anna")
	if err := g.Allow(netip.MustParseAddr("2001:db8:1:2::2"), "anna"); !errors.Is(err, ErrBlocked) {
		t.Errorf("same /64 after the limit: %v", err)
	}
}

func TestServerFullLoggedOnce(t *testing.T) {
	t.Parallel()
	logs := &syncbuf.Buffer{}
	g := New(Options{MaxConnections: 10, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Limits: Limits{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	var releases []func()
	for i := range 10 {
		r, err := g.Admit(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	for range 5 {
		if _, err := g.Admit(inside); !errors.Is(err, ErrServerFull) {
			t.Fatalf("past the bound (even trusted): %v", err)
		}
	}
	releases[0]()
	if _, err := g.Admit(other); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	g.Admit(other)
	if n := strings.Count(logs.String(), "connection limit reached"); n != 1 {
		t.Errorf("logged %d times, want once per episode:\n%s", n, logs)
	}
	for _, r := range releases[1:] {
		r()
	}
	g.Admit(other)
	for range 10 {
		g.Admit(attacker)
	}
	if n := strings.Count(logs.String(), "connection limit reached"); n != 2 {
		t.Errorf("a second episode: logged %d times, want 2", n)
	}
}

func TestRecordsBoundedAndExpire(t *testing.T) {
	t.Parallel()
	g, c, _ := newTestGuard(t, Limits{AuthFailures: 10, AuthFailuresPerIP: 100})
	for i := range MaxEntries + 100 {
		g.Failed(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "anna")
	}
	if n := g.Records(); n > 2*MaxEntries {
		t.Fatalf("%d records, want at most %d", n, 2*MaxEntries)
	}
	c.advance(Window)
	g.Failed(attacker, "anna")
	if n := g.Records(); n != 2 {
		t.Errorf("after the window: %d records, want the 2 of the last failure", n)
	}
}

func TestSetLimits(t *testing.T) {
	t.Parallel()
	g, _, _ := newTestGuard(t, Limits{ConnectionsPerIP: 1})
	g.Admit(attacker)
	if _, err := g.Admit(attacker); err == nil {
		t.Fatal("second connection admitted")
	}
	g.SetLimits(Limits{ConnectionsPerIP: 2})
	if _, err := g.Admit(attacker); err != nil {
		t.Errorf("after raising the limit: %v", err)
	}
	g.SetLimits(Limits{ConnectionsPerIP: 2, Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if _, err := g.Admit(attacker); err != nil {
		t.Errorf("after trusting the address: %v", err)
	}
}

// TestListenerRefusesAndReleases runs the listener over real sockets: the
// connection past the limit is told why and closed, and closing an
// admitted one makes room.
func TestListenerRefusesAndReleases(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := New(Options{Limits: Limits{ConnectionsPerIP: 1}})
	ln := g.Listener(raw, func(c net.Conn, reason error) { io.WriteString(c, "NO "+reason.Error()+"\r\n") })
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			io.WriteString(c, "HELLO\r\n")
			accepted <- c
		}
	}()
	greeting := func() string {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if got := greeting(); got != "HELLO\r\n" {
		t.Fatalf("first: %q", got)
	}
	first := <-accepted
	if got := greeting(); got != "NO too many connections from your address\r\n" {
		t.Fatalf("second: %q", got)
	}
	first.Close()
	if got := greeting(); got != "HELLO\r\n" {
		t.Fatalf("after the first closed: %q", got)
	}
	(<-accepted).Close()
}
