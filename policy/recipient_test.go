package policy

import (
	"errors"
	"testing"
)

func TestCheckRecipient(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		rcpt    string
		auth    bool
		want    error // nil = accepted
		message string
	}{
		{"anna@contoso.test", false, nil, ""},
		{"ANNA+x@CONTOSO.test", false, nil, ""},
		{"kontakt@contoso.test", false, nil, ""},
		{"anna@fourthcoffee.test", false, nil, ""},
		{"nobody@contoso.test", false, ErrNoSuchMailbox, "<nobody@contoso.test>: no such mailbox"},
		{"Nobody@Contoso.Test", true, ErrNoSuchMailbox, "<nobody@contoso.test>: no such mailbox"},
		{"someone@fabrikam.example", false, ErrRelayDenied, "<someone@fabrikam.example>: relay access denied"},
		{"someone@fabrikam.example", true, nil, ""},
		{"sales@contoso.test", false, ErrLocalSendersOnly, "<sales@contoso.test>: this group accepts mail from local senders only"},
		{"sales+x@contoso.test", false, ErrLocalSendersOnly, "<sales+x@contoso.test>: this group accepts mail from local senders only"},
		{"sales@contoso.test", true, nil, ""},
		{"news@contoso.test", false, nil, ""},
		{"", false, ErrBadAddress, "bad recipient address syntax"},
		// No postmaster in the test directory: refused like any unknown address.
		{"postmaster", true, ErrNoSuchMailbox, "<postmaster>: no such mailbox"},
		{"postmaster@contoso.test", false, ErrNoSuchMailbox, "<postmaster@contoso.test>: no such mailbox"},
		{"a b@contoso.test", false, ErrBadAddress, "bad recipient address syntax"},
	}
	for _, tt := range tests {
		err := d.CheckRecipient(tt.rcpt, tt.auth)
		if tt.want == nil {
			if err != nil {
				t.Errorf("CheckRecipient(%q, %t) = %v, want accepted", tt.rcpt, tt.auth, err)
			}
			continue
		}
		var re *RecipientError
		if !errors.Is(err, tt.want) || !errors.As(err, &re) || err.Error() != tt.message {
			t.Errorf("CheckRecipient(%q, %t) = %v, want %v %q", tt.rcpt, tt.auth, err, tt.want, tt.message)
		}
	}
}

// TestPostmaster: postmaster@ every domain and "postmaster" alone reach
// the configured postmaster, closed group or not, unless a domain has its
// own postmaster address.
func TestPostmaster(t *testing.T) {
	t.Parallel()
	opts := DirectoryOptions{
		Domains: []string{"contoso.test", "fourthcoffee.test"},
		Mailboxes: []Mailbox{
			{ID: "anna", Kind: KindUser, Address: "anna@contoso.test"},
			{ID: "pm", Kind: KindUser, Address: "postmaster@fourthcoffee.test"},
		},
		Groups:     []Group{{ID: "ops", Address: "ops@contoso.test", Members: []string{"anna@contoso.test"}}},
		Postmaster: "ops@contoso.test",
	}
	d, err := NewDirectory(opts)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"postmaster@contoso.test":      "ops",
		"Postmaster@CONTOSO.test":      "ops",
		"postmaster":                   "ops",
		"PostMaster":                   "ops",
		"postmaster+x@contoso.test":    "ops",
		"postmaster@fourthcoffee.test": "pm",
	} {
		if err := d.CheckRecipient(addr, false); err != nil {
			t.Errorf("CheckRecipient(%q) = %v", addr, err)
		}
		if got, ok := d.Resolve(addr); !ok || got.ID != want {
			t.Errorf("Resolve(%q) = %+v, %t; want %s", addr, got, ok, want)
		}
	}
	if _, ok := d.Resolve("postmaster@fabrikam.example"); ok {
		t.Error("postmaster of a foreign domain resolves")
	}
	if got := d.Unattended(); len(got) != 0 {
		t.Errorf("Unattended = %v", got)
	}
	opts.Postmaster = ""
	d, _ = NewDirectory(opts)
	if got := d.Unattended(); len(got) != 1 || got[0] != "postmaster@contoso.test" {
		t.Errorf("without postmaster, Unattended = %v", got)
	}
	if got, ok := d.Resolve("postmaster"); !ok || got.ID != "pm" {
		t.Errorf("postmaster alone without a postmaster key = %+v", got)
	}
	opts.Postmaster = "nobody@contoso.test"
	if _, err := NewDirectory(opts); err == nil {
		t.Error("a postmaster that names nothing is accepted")
	}
}
