package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// The records of `postkasse dns` load into a zone parser, DKIM text split
// into strings a zone file accepts.
func TestDNSCommandPrintsAZone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "k.pem")
	cfgPath := filepath.Join(dir, "config.toml")
	text := strings.ReplaceAll(baseConfig, "DATA", filepath.Join(dir, "data")) + `
[listen]
imaps = ""
imap  = ":143"
submission = ":587"
http  = ":80"
`
	// As an admin does: the key first, then its [dkim] table.
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"dkim-keygen", "-config", cfgPath, "-out", key, "-selector", "pk1", "contoso.test"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatal("dkim-keygen failed")
	}
	text += `
[dkim."contoso.test"]
selector = "pk1"
key = "` + key + `"
`
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	if code := run([]string{"dns", "-config", cfgPath}, nil, out, errOut); code != 0 {
		t.Fatalf("dns: exit %d: %s", code, errOut.String())
	}
	zp := dns.NewZoneParser(strings.NewReader(out.String()), "", "")
	byName := map[string][]dns.RR{}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		byName[rr.Header().Name] = append(byName[rr.Header().Name], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone parser: %v\n%s", err, out.String())
	}
	want := []string{
		"contoso.test.", "fourthcoffee.test.", "_dmarc.contoso.test.", "pk1._domainkey.contoso.test.",
		"_imaps._tcp.contoso.test.", "_imap._tcp.contoso.test.", "_submissions._tcp.contoso.test.", "_submission._tcp.contoso.test.",
		"_carddavs._tcp.contoso.test.", "autoconfig.contoso.test.", "autodiscover.contoso.test.", "_autodiscover._tcp.fourthcoffee.test.",
	}
	for _, name := range want {
		if len(byName[name]) == 0 {
			t.Errorf("no record for %s", name)
		}
	}
	if _, ok := byName["pk1._domainkey.fourthcoffee.test."]; ok {
		t.Error("a DKIM record for a domain without a key")
	}
	dkimTXT := byName["pk1._domainkey.contoso.test."][0].(*dns.TXT)
	if len(dkimTXT.Txt) < 2 || !strings.HasPrefix(strings.Join(dkimTXT.Txt, ""), "v=DKIM1; k=rsa; p=") {
		t.Errorf("DKIM record: %v", dkimTXT.Txt)
	}
	imap := byName["_imap._tcp.contoso.test."][0].(*dns.SRV)
	imaps := byName["_imaps._tcp.contoso.test."][0].(*dns.SRV)
	if imap.Port != 143 || imap.Target != "mail.contoso.test." || imaps.Target != "." {
		t.Errorf("SRV: %v / %v", imap, imaps)
	}
	if mx := byName["contoso.test."][0].(*dns.MX); mx.Mx != "mail.contoso.test." {
		t.Errorf("MX: %v", mx)
	}
}
