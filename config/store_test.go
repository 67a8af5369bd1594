package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreBackend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src string
		want      Store
		err       string
	}{
		{"default", "", Store{Backend: "bbolt"}, ""},
		{"bbolt", "[store]\nbackend = \"bbolt\"\n", Store{Backend: "bbolt"}, ""},
		{"postgres url", "[store]\nbackend = \"postgres\"\ndsn = \"postgres://pk:s3cret@db.contoso.test:5433/mail?sslmode=verify-full\"\n",
			Store{Backend: "postgres", DSN: "postgres://pk:s3cret@db.contoso.test:5433/mail?sslmode=verify-full", Where: "pk@db.contoso.test:5433/mail"}, ""},
		{"postgres keywords", "[store]\nbackend = \"postgres\"\ndsn = \"host=/run/pg port=5432 user=pk dbname=mail password=s3cret\"\n",
			Store{Backend: "postgres", DSN: "host=/run/pg port=5432 user=pk dbname=mail password=s3cret", Where: "pk@/run/pg:5432/mail"}, ""},
		{"postgres without dsn", "[store]\nbackend = \"postgres\"\n", Store{}, "store.dsn: must name the PostgreSQL database"},
		{"bad dsn", "[store]\nbackend = \"postgres\"\ndsn = \"postgres://pk:s3cret@db:notaport/mail\"\n", Store{}, "store.dsn: is not a PostgreSQL connection string"},
		{"dsn for bbolt", "[store]\ndsn = \"postgres://db/mail\"\n", Store{}, `store.dsn: is only for backend = "postgres"`},
		{"unknown backend", "[store]\nbackend = \"sqlite\"\n", Store{}, `store.backend: "sqlite" is neither "bbolt" nor "postgres"`},
	} {
		cfg, err := Parse(filepath.Join(dir, "c.toml"), []byte(base+tc.src))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case tc.err != "" && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		case tc.err == "" && cfg.Store != tc.want:
			t.Errorf("%s: %+v, want %+v", tc.name, cfg.Store, tc.want)
		}
	}
}
