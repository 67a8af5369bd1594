//go:build unix

// Package fileowner gives files that the administrator's commands create
// the owner of the directory they live in. `sudo postkasse compact` would
// otherwise leave a store owned by root in a data directory that belongs to
// the service's user, and the server could no longer open it.
package fileowner

import (
	"fmt"
	"os"
	"syscall"
)

// Match gives path the owner and group of like (a file or directory) when
// this process runs as root and they differ. For anyone else it does
// nothing: only root can give files away, and a file an ordinary user
// creates is theirs anyway.
func Match(path, like string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	want, err := os.Stat(like)
	if err != nil {
		return fmt.Errorf("owner of %s: %w", like, err)
	}
	have, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("owner of %s: %w", path, err)
	}
	w, ok1 := want.Sys().(*syscall.Stat_t)
	h, ok2 := have.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || w.Uid == h.Uid && w.Gid == h.Gid {
		return nil
	}
	if err := os.Lchown(path, int(w.Uid), int(w.Gid)); err != nil {
		return fmt.Errorf("give %s the owner of %s: %w", path, like, err)
	}
	return nil
}
