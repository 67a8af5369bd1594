// Command postkasse is a mail server for an organisation's own domains:
// `postkasse serve` runs it; check, passwd, resolve, queue and dkim-keygen
// help the administrator. It is the only package that reads the
// configuration file; it hands every other package its own options.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: postkasse COMMAND [flags]

commands:
  serve       [-config FILE] [-debug]       run the server
  check       [-config FILE]                validate the file and show who can do what
  passwd                                    read a password, print a hash for the file
  resolve     [-config FILE] ADDRESS        show where mail to ADDRESS goes
  queue       [-config FILE] list|flush|delete ID   the outbound queue of a running server
  dkim-keygen [-config FILE] [-selector S] [-force] DOMAIN   write a DKIM key, print its DNS record
  compact     [-config FILE]                shrink the store file (server stopped)
  dns         [-config FILE] [DOMAIN]       print the DNS records to publish, as zone-file lines
  usage       [-config FILE]                size, messages and quota of every mailbox
  purge       [-config FILE] KEY            delete the data of a mailbox no longer in the file
  backup      [-config FILE] FILE           write a consistent copy of the store (server running or not)
  restore     [-config FILE] FILE           check a backup and put it in place (server stopped)
  import      [-config FILE] [-folder NAME] ADDRESS PATH   file a Maildir or an mbox into a mailbox
  export      [-config FILE] ADDRESS DIR    write every folder of a mailbox as a Maildir
  copy-store  [-config FILE] -to DSN|bbolt:PATH   copy the whole store into a new one (server stopped)

The default FILE is /etc/postkasse/config.toml.
`

// run is main without the process: tests call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(rest, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "passwd":
		return cmdPasswd(stdin, stdout, stderr)
	case "resolve":
		return cmdResolve(rest, stdout, stderr)
	case "queue":
		return cmdQueue(rest, stdout, stderr)
	case "dkim-keygen":
		return cmdDKIMKeygen(rest, stdout, stderr)
	case "compact":
		return cmdCompact(rest, stdout, stderr)
	case "dns":
		return cmdDNS(rest, stdout, stderr)
	case "usage":
		return cmdUsage(rest, stdout, stderr)
	case "purge":
		return cmdPurge(rest, stdout, stderr)
	case "backup":
		return cmdBackup(rest, stdout, stderr)
	case "restore":
		return cmdRestore(rest, stdout, stderr)
	case "import":
		return cmdImport(rest, stdout, stderr)
	case "export":
		return cmdExport(rest, stdout, stderr)
	case "copy-store":
		return cmdCopyStore(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "postkasse: unknown command %q\n\n%s", cmd, usage)
	return 2
}
