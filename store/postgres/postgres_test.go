package postgres

import (
	"context"
	"os"
	"testing"

	"postkasse.dev/postkasse/store/postgres/pgtest"
	"postkasse.dev/postkasse/store/storetest"
)

// cluster is the private PostgreSQL server of this test process.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &cluster)) }

// openTest opens a store on a new database (or on dsn, when given: a second
// node on the same database) and checks and closes it when the test ends.
func openTest(t *testing.T, dsn string, opts Options) *Store {
	t.Helper()
	if dsn == "" {
		dsn = pgtest.DB(t, cluster)
	}
	opts.DSN = dsn
	if opts.Analyze == nil {
		opts.Analyze = storetest.Analyze
	}
	if opts.SearchData == nil {
		opts.SearchData = storetest.SearchData
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.closed.Load() {
			return // the test closed it: a node that died
		}
		if err := s.Check(); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// TestConformance runs the backend-neutral suite against PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return openTest(t, "", Options{})
	})
}
