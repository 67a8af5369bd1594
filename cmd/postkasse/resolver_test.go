package main

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"postkasse.dev/postkasse/internal/testdns"
)

// TestDNSResolverReachesTheQueue: [dns] resolver is where the outbound
// queue asks for MX records (SPEC §3; outbound.resolver is its old name).
func TestDNSResolverReachesTheQueue(t *testing.T) {
	t.Parallel()
	sk := newSink(t, "127.0.0.1")
	_, portStr, _ := net.SplitHostPort(sk.addr)
	port, _ := strconv.Atoi(portStr)
	zone := testdns.New(t, "fabrikam.example. MX 10 mx.fabrikam.example.", "mx.fabrikam.example. A 127.0.0.1")
	ts := startServerPort(t, fmt.Sprintf("[dns]\nresolver = %q\n", zone.Addr), port)
	msg := "From: anna@contoso.test\nTo: partner@fabrikam.example\nSubject: via dns.resolver\n\nx\n"
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example"}, msg); err != nil {
		t.Fatal(err)
	}
	if got := sk.wait(t, 1)[0]; got.To[0] != "partner@fabrikam.example" {
		t.Fatalf("sink got %+v", got)
	}
	if zone.Asked("fabrikam.example", "MX") == 0 {
		t.Fatal("the queue did not ask [dns] resolver")
	}
}
