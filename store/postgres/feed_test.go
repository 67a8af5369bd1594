package postgres

import (
	"strings"
	"testing"
)

// FuzzParsePayload: any notification payload is parsed or refused without
// a panic, and a parsed one keeps its account whole.
func FuzzParsePayload(f *testing.F) {
	f.Add("1 2 3 anna")
	f.Add("18446744073709551615 7 9223372036854775807 a b c")
	f.Add("x 1 2 anna")
	f.Add("")
	f.Fuzz(func(t *testing.T, p string) {
		k, _, _, err := parsePayload(p)
		if err == nil && !strings.HasSuffix(p, " "+k.account) {
			t.Fatalf("%q parsed with account %q", p, k.account)
		}
	})
}
