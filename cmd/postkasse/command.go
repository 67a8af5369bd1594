package main

import (
	"flag"
	"fmt"
	"io"

	"postkasse.dev/postkasse/config"
)

// command is a subcommand's flags, -config among them. Every command
// that reads the file parses and loads it through load, so the exit
// statuses stay one rule: 2 for a usage error, 1 for a file that does not
// load.
type command struct {
	fs     *flag.FlagSet
	path   *string
	stderr io.Writer
}

// newCommand starts a command's flags with -config; configHelp describes
// what the command reads the file for.
func newCommand(name, configHelp string, stderr io.Writer) command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return command{fs: fs, path: fs.String("config", config.DefaultPath, configHelp), stderr: stderr}
}

// load parses args, checks the number of arguments left with argsOK, and
// loads the file. On failure it says why (the usage line, if any, or the
// file's errors) and returns a nil configuration with the exit status.
func (c command) load(args []string, argsOK func(n int) bool, usage string) (*config.Config, int) {
	if c.fs.Parse(args) != nil || !argsOK(c.fs.NArg()) {
		if usage != "" {
			fmt.Fprintln(c.stderr, usage)
		}
		return nil, 2
	}
	cfg, err := config.Load(*c.path)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return nil, 1
	}
	return cfg, 0
}

// exactly accepts n arguments; anyArgs accepts any number.
func exactly(n int) func(int) bool { return func(got int) bool { return got == n } }

func anyArgs(int) bool { return true }
