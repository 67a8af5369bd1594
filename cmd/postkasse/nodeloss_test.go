package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
)

// holdingSink is a sink that keeps every session waiting at MAIL FROM
// until released, so the nodes' delivery attempts hang holding their
// queue claims.
type holdingSink struct {
	*sink
	held    atomic.Int32 // sessions that reached MAIL FROM
	release chan struct{}
	once    sync.Once
}

func newHoldingSink(t *testing.T) *holdingSink {
	t.Helper()
	h := &holdingSink{sink: &sink{got: make(chan struct{}, 100)}, release: make(chan struct{})}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &holdingSession{sinkSession: &sinkSession{sink: h.sink, conn: c}, h: h}, nil
	}))
	srv.Domain = "sink.example"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() {
		h.open()
		srv.Close()
	})
	return h
}

// open lets every waiting and later session go on.
func (h *holdingSink) open() { h.once.Do(func() { close(h.release) }) }

type holdingSession struct {
	*sinkSession
	h *holdingSink
}

func (s *holdingSession) Mail(from string, opts *gosmtp.MailOptions) error {
	s.h.held.Add(1)
	<-s.h.release
	return s.sinkSession.Mail(from, opts)
}

// TestDeadNodeClaimsPass: two nodes deliver 20 messages submitted to them
// in turn to a remote server that keeps every session waiting, so both
// hold claims. One node is killed (SIGKILL) while holding claims; once
// the remote answers, the other node delivers every message, its own and
// the dead node's, exactly once, after the dead node's lease ran out.
func TestDeadNodeClaimsPass(t *testing.T) {
	t.Parallel()
	sk := newHoldingSink(t)
	const lease = 5 * time.Second
	nc := startNodes(t, 2, strings.ReplaceAll("[outbound]\nsmarthost = \"SINK\"\nsmarthost_tls = \"none\"\nretry_after = \"200ms\"\n", "SINK", sk.addr), lease)
	db := nc.db()
	subjects := submitAlternately(t, nc, "claimed", 20)
	var claims map[*node]int
	waitUntil(t, 10*time.Second, "delivery attempts holding claims", func() bool {
		claims = claimsByNode(t, nc, db)
		return sk.held.Load() > 0 && len(claims) > 0
	})
	victim := nc.nodes[0]
	if claims[nc.nodes[1]] > claims[victim] {
		victim = nc.nodes[1]
	}
	victim.kill()
	killed := time.Now()
	sk.open()
	// The lease runs out within 5 s of the kill, and the survivor looks
	// at claims held elsewhere every 10 s (queue's claimedRetry); 10 s
	// more for a loaded machine.
	waitUntil(t, 25*time.Second, "20 messages at the remote server after the kill", func() bool {
		return len(received(sk.sink, subjects)) == len(subjects) && queueLength(t, db) == 0
	})
	t.Logf("node %s was killed holding %d claims (the other held %d); all 20 messages delivered %v later (lease %v)",
		victim.name, claims[victim], claims[otherNode(nc, victim)], time.Since(killed).Round(time.Millisecond), lease)
	for s, n := range received(sk.sink, subjects) {
		if n != 1 {
			t.Errorf("%q reached the remote server %d times", s, n)
		}
	}
}

func otherNode(nc *nodeCluster, nd *node) *node {
	if nc.nodes[0] == nd {
		return nc.nodes[1]
	}
	return nc.nodes[0]
}

// claimsByNode counts the queue claims each node holds; a node's claims
// carry its process id (store/postgres's node name).
func claimsByNode(t *testing.T, nc *nodeCluster, db *pgx.Conn) map[*node]int {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT claimed_by FROM queue WHERE claimed_by IS NOT NULL AND lease_until > now()")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[*node]int{}
	for _, name := range names {
		for _, nd := range nc.nodes {
			if strings.Contains(name, "/"+strconv.Itoa(nd.cmd.Process.Pid)+"/") {
				out[nd]++
			}
		}
	}
	return out
}
