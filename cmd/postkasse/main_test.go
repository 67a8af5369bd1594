package main

import (
	"os"
	"strings"
	"testing"

	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// testCluster is the PostgreSQL cluster the test servers' stores live in
// when POSTKASSE_TEST_BACKEND=postgres (see onPostgres); nil otherwise.
var testCluster *pgtest.Cluster

// TestMain lets a test run this binary as the real `postkasse` in a child
// process (crash tests): with POSTKASSE_TEST_ARGS set it is the command.
// With POSTKASSE_TEST_BACKEND=postgres it starts one private PostgreSQL
// cluster for the whole run; each test server gets a database of its own.
func TestMain(m *testing.M) {
	if args := os.Getenv("POSTKASSE_TEST_ARGS"); args != "" {
		os.Exit(run(strings.Split(args, "\x1f"), os.Stdin, os.Stdout, os.Stderr))
	}
	if onPostgres() {
		os.Exit(pgtest.Main(m, &testCluster))
	}
	os.Exit(m.Run())
}
