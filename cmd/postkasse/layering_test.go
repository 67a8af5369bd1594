package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering keeps each package's promise about what it must not import
// (its doc comment says why): the store knows no protocol, the protocol
// packages know no TOML, policy knows nothing that does I/O, connected
// speaks IMAP only as a client and files through delivery, mailfile knows
// files only and metrics only counts.
func TestLayering(t *testing.T) {
	t.Parallel()
	const mod = "postkasse.dev/postkasse/"
	for pkg, forbidden := range map[string][]string{
		"store":     {"github.com/emersion/go-smtp", "github.com/emersion/go-imap", mod + "policy", mod + "config", mod + "smtp", mod + "imap"},
		"policy":    {"go.etcd.io/bbolt", mod + "store", mod + "config", "github.com/emersion/go-smtp", "github.com/emersion/go-imap", "net"},
		"imap":      {mod + "config", mod + "policy", mod + "smtp", "github.com/emersion/go-smtp", "github.com/BurntSushi/toml"},
		"smtp":      {mod + "config", mod + "imap", "github.com/emersion/go-imap", "github.com/BurntSushi/toml"},
		"delivery":  {mod + "config", mod + "smtp", mod + "imap", "github.com/emersion/go-smtp", "github.com/emersion/go-imap"},
		"queue":     {mod + "config", mod + "imap", mod + "policy"},
		"connected": {mod + "config", mod + "imap", mod + "smtp", "github.com/emersion/go-smtp", "github.com/BurntSushi/toml"},
		"web":       {mod + "config", mod + "smtp", mod + "imap", "github.com/emersion/go-smtp", "github.com/emersion/go-imap", "github.com/BurntSushi/toml"},
		"config":    {mod + "store", mod + "policy", mod + "smtp", mod + "imap"},
		"guard":     {mod + "config", mod + "smtp", mod + "imap", "github.com/emersion/go-smtp", "github.com/emersion/go-imap", "github.com/BurntSushi/toml"},
		"mailauth":  {mod + "config", mod + "store", mod + "policy", mod + "smtp", mod + "imap", mod + "delivery", "github.com/emersion/go-smtp"},
		"certs":     {mod + "config", mod + "policy", mod + "smtp", mod + "imap", mod + "delivery", mod + "queue"},
		"resolver":  {mod + "config", mod + "store", mod + "policy", mod + "smtp", mod + "imap", mod + "delivery", mod + "queue"},
		"mailfile":  {mod + "store", mod + "config", mod + "policy", mod + "smtp", mod + "imap"},
	} {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, f := range forbidden {
			for _, d := range deps {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
	}
}
