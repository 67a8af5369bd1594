package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"postkasse.dev/postkasse/dkim"
	"postkasse.dev/postkasse/internal/fileowner"
)

// cmdDKIMKeygen writes a DKIM key for one of the served domains and prints
// the DNS record. It does not replace an existing key unless told to: the
// published record would no longer match the key that signs.
func cmdDKIMKeygen(args []string, stdout, stderr io.Writer) int {
	c := newCommand("dkim-keygen", "configuration file (domains, data directory)", stderr)
	selector := c.fs.String("selector", "pk1", "DKIM selector")
	out := c.fs.String("out", "", "key file to write (default DATA_DIR/dkim/DOMAIN.pem)")
	force := c.fs.Bool("force", false, "replace an existing key file")
	cfg, code := c.load(args, exactly(1), "usage: postkasse dkim-keygen [-config FILE] [-selector S] [-out FILE] [-force] DOMAIN")
	if cfg == nil {
		return code
	}
	domain := strings.TrimSuffix(strings.ToLower(c.fs.Arg(0)), ".")
	if !slices.Contains(cfg.Domains, domain) {
		fmt.Fprintf(stderr, "postkasse dkim-keygen: %s is not one of the domains of %s (%s)\n", domain, cfg.File, strings.Join(cfg.Domains, ", "))
		return 1
	}
	file := *out
	if file == "" {
		file = filepath.Join(cfg.DataDir, "dkim", domain+".pem")
	}
	if _, err := os.Stat(file); err == nil && !*force {
		fmt.Fprintf(stderr, "postkasse dkim-keygen: %s exists; its record may be published already. Use -force to replace it.\n", file)
		return 1
	}
	pemBytes, signer, err := dkim.GenerateKey(0)
	if err == nil {
		err = writeKey(file, pemBytes)
	}
	if err != nil {
		fmt.Fprintln(stderr, "postkasse dkim-keygen:", err)
		return 1
	}
	name, value, err := dkim.TXTRecord(*selector, domain, signer.Public())
	if err != nil {
		fmt.Fprintln(stderr, "postkasse dkim-keygen:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %s. Publish this DNS record:\n\n%s. IN TXT ( %s )\n\nand add to the configuration:\n\n[dkim.%q]\nselector = %q\nkey = %q\n",
		file, name, txtStrings(value), domain, *selector, file)
	return 0
}

// writeKey writes the key file (and its directory) readable by the owner
// only. Both take the owner of the directory they are made in, so a key
// written by root in the service's data directory is the service's.
func writeKey(file string, pemBytes []byte) error {
	dir := filepath.Dir(file)
	_, err := os.Stat(dir)
	newDir := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if newDir {
		if err := fileowner.Match(dir, filepath.Dir(dir)); err != nil {
			return err
		}
	}
	tmp := file + ".new"
	if err := os.WriteFile(tmp, pemBytes, 0o600); err != nil {
		return err
	}
	if err := fileowner.Match(tmp, dir); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, file)
}

// txtStrings quotes value as zone-file character-strings (splitTXT's),
// separated by spaces.
func txtStrings(value string) string {
	parts := splitTXT(value)
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, " ")
}
