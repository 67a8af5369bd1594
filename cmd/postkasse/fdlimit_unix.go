//go:build unix

package main

import "golang.org/x/sys/unix"

// openFileLimit is the soft RLIMIT_NOFILE in force; 0 when unknown. Go
// raises it to the hard limit when the program starts (syscall's init,
// since Go 1.19), so there is nothing left to raise here.
func openFileLimit() uint64 {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0
	}
	return rl.Cur
}
