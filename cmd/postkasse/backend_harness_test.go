package main

import (
	"fmt"
	"os"
	"testing"

	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// onPostgres tells whether the test servers keep their stores in
// PostgreSQL: `POSTKASSE_TEST_BACKEND=postgres go test ./cmd/postkasse/`
// runs the whole server suite on that backend (make test does both).
func onPostgres() bool {
	return os.Getenv("POSTKASSE_TEST_BACKEND") == "postgres"
}

// storeTable is the [store] table that puts a test server's store in a
// database of its own, made on first use and kept across restarts and
// reloads; "" on bbolt.
func (ts *testServer) storeTable() string {
	if !onPostgres() {
		return ""
	}
	if ts.dsn == "" {
		ts.dsn = pgtest.DB(ts.t, testCluster)
	}
	return fmt.Sprintf("\n[store]\nbackend = \"postgres\"\ndsn = %q\n", ts.dsn)
}

// bboltOnlyTest skips a test of what only the bbolt file has (compact,
// backup and restore of the file, the file itself) when the suite runs on
// PostgreSQL, saying why.
func bboltOnlyTest(t testing.TB, why string) {
	t.Helper()
	if onPostgres() {
		t.Skip("bbolt only: " + why)
	}
}
