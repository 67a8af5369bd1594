package policy

import "testing"

func TestCheckRecipient(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		rcpt     string
		auth     bool
		code     int // 0 = accepted
		enhanced [3]int
		message  string
	}{
		{"anna@contoso.test", false, 0, [3]int{}, ""},
		{"ANNA+x@CONTOSO.test", false, 0, [3]int{}, ""},
		{"kontakt@contoso.test", false, 0, [3]int{}, ""},
		{"anna@fourthcoffee.test", false, 0, [3]int{}, ""},
		{"nobody@contoso.test", false, 550, [3]int{5, 1, 1}, "<nobody@contoso.test>: no such mailbox"},
		{"Nobody@Contoso.Test", true, 550, [3]int{5, 1, 1}, "<nobody@contoso.test>: no such mailbox"},
		{"someone@fabrikam.example", false, 554, [3]int{5, 7, 1}, "relay access denied"},
		{"someone@fabrikam.example", true, 0, [3]int{}, ""},
		{"sales@contoso.test", false, 550, [3]int{5, 7, 1}, "<sales@contoso.test>: this group accepts mail from local senders only"},
		{"sales+x@contoso.test", false, 550, [3]int{5, 7, 1}, "<sales+x@contoso.test>: this group accepts mail from local senders only"},
		{"sales@contoso.test", true, 0, [3]int{}, ""},
		{"news@contoso.test", false, 0, [3]int{}, ""},
		{"", false, 553, [3]int{5, 1, 3}, "bad recipient address syntax"},
		{"postmaster", true, 553, [3]int{5, 1, 3}, "bad recipient address syntax"},
		{"a b@contoso.test", false, 553, [3]int{5, 1, 3}, "bad recipient address syntax"},
	}
	for _, tt := range tests {
		r := d.CheckRecipient(tt.rcpt, tt.auth)
		if tt.code == 0 {
			if r != nil {
				t.Errorf("CheckRecipient(%q, %t) = %+v, want accepted", tt.rcpt, tt.auth, *r)
			}
			continue
		}
		if r == nil {
			t.Errorf("CheckRecipient(%q, %t) accepted, want %d", tt.rcpt, tt.auth, tt.code)
			continue
		}
		if r.Code != tt.code || r.Enhanced != tt.enhanced || r.Message != tt.message {
			t.Errorf("CheckRecipient(%q, %t) = %+v, want %d %v %q", tt.rcpt, tt.auth, *r, tt.code, tt.enhanced, tt.message)
		}
	}
}
