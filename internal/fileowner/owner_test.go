//go:build unix

package fileowner

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMatch: as root, a new file takes the owner of its directory. The
// test needs root (it runs as root in CI); as anyone else Match must leave
// the file alone.
func TestMatch(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := Match(file, dir); err != nil {
			t.Fatal(err)
		}
		t.Skip("giving a file away needs root")
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := Match(file, dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("owner %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}
