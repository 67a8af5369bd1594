package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain lets a test run this binary as the real `postkasse` in a child
// process (crash tests): with POSTKASSE_TEST_ARGS set it is the command.
func TestMain(m *testing.M) {
	if args := os.Getenv("POSTKASSE_TEST_ARGS"); args != "" {
		os.Exit(run(strings.Split(args, "\x1f"), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
