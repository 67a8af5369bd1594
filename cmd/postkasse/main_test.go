package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// testCluster is the PostgreSQL cluster the test servers' stores live in
// when POSTKASSE_TEST_BACKEND=postgres (see onPostgres); nil otherwise.
var testCluster *pgtest.Cluster

// TestMain lets a test run this binary as the real `postkasse` in a child
// process (crash tests, several nodes): with POSTKASSE_TEST_ARGS set it is
// the command.
// With POSTKASSE_TEST_BACKEND=postgres it starts one private PostgreSQL
// cluster for the whole run; each test server gets a database of its own.
func TestMain(m *testing.M) {
	if args := os.Getenv("POSTKASSE_TEST_ARGS"); args != "" {
		os.Exit(runChild(strings.Split(args, "\x1f")))
	}
	if onPostgres() {
		os.Exit(pgtest.Main(m, &testCluster))
	}
	os.Exit(m.Run())
}

// runChild runs the command of a child process. `serve` takes the queue
// lease from POSTKASSE_TEST_QUEUE_LEASE, which only this test binary
// reads: the real command has no such knob.
func runChild(args []string) int {
	lease, err := time.ParseDuration(os.Getenv("POSTKASSE_TEST_QUEUE_LEASE"))
	if args[0] != "serve" || err != nil {
		return run(args, os.Stdin, os.Stdout, os.Stderr)
	}
	return serveWith(args[1:], os.Stderr, serverOptions{queueLease: lease})
}
