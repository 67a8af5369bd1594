package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckShowsStoreBackend: check names the store, a PostgreSQL DSN
// without its password; the commands that work on the bbolt file refuse a
// PostgreSQL store and name the database's own tools.
func TestCheckShowsStoreBackend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bolt := filepath.Join(dir, "bolt.toml")
	os.WriteFile(bolt, []byte(baseConfig), 0o600)
	pg := filepath.Join(dir, "pg.toml")
	os.WriteFile(pg, []byte(baseConfig+"[store]\nbackend = \"postgres\"\ndsn = \"postgres://pk:s3cret@db.contoso.test:5433/mail\"\n"), 0o600)

	var out, errOut bytes.Buffer
	if code := run([]string{"check", "-config", bolt}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	if want := "bbolt " + filepath.Join(dir, "DATA", "mail.db"); !strings.Contains(out.String(), want) {
		t.Errorf("check output lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	if code := run([]string{"check", "-config", pg}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	if want := "postgres pk@db.contoso.test:5433/mail"; !strings.Contains(out.String(), want) {
		t.Errorf("check output lacks %q:\n%s", want, out.String())
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Errorf("check shows the database password:\n%s", out.String())
	}

	for _, args := range [][]string{{"compact"}, {"backup", filepath.Join(dir, "b")}, {"restore", filepath.Join(dir, "b")}} {
		out.Reset()
		errOut.Reset()
		code := run(append([]string{args[0], "-config", pg}, args[1:]...), nil, &out, &errOut)
		if code != 1 || !strings.Contains(errOut.String(), "the store is in PostgreSQL") || !strings.Contains(errOut.String(), "pg_dump") {
			t.Errorf("%s on PostgreSQL: exit %d, %q", args[0], code, errOut.String())
		}
		if strings.Contains(errOut.String(), "s3cret") {
			t.Errorf("%s shows the database password: %q", args[0], errOut.String())
		}
	}
}
