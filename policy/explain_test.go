package policy

import (
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	away := replyDirectory(t, nil)
	tests := []struct {
		name string
		d    *Directory
		addr string
		want []string
	}{
		{"alias of a user", d, "Support@contoso.test", []string{
			"support@contoso.test\n", "  alias of anna@contoso.test\n", "  user anna\n",
			"  addresses: anna@contoso.test, support@contoso.test, anna@fourthcoffee.test\n",
			"  forwarding: none\n", "  automatic reply: off\n", "  stored in: anna\n",
		}},
		{"subaddress", d, "anna+x@contoso.test", []string{"  subaddress of anna@contoso.test\n", "  stored in: anna\n"}},
		{"a user whose name has a plus", d, "anna+special@contoso.test", []string{"  user annaplus\n"}},
		{"shared mailbox", d, "info@contoso.test", []string{
			"  shared info\n",
			"  members: anna@contoso.test (user), helpdesk@contoso.test (group)\n",
			"  grant: carl@contoso.test (user): read\n",
			"    erik (erik@contoso.test): send_on_behalf\n",
			"    hanna (hanna@contoso.test): full,send_as\n",
		}},
		{"group tree", d, "sales@contoso.test", []string{
			"  group sales\n",
			"  allow_external_senders = false: only authenticated local senders\n",
			"  send_auto_replies = false\n",
			"    bo@contoso.test: user bo\n",
			"    info@contoso.test: shared info\n",
			"    helpdesk@contoso.test: group helpdesk\n",
			"      l2@contoso.test: group l2\n",
			"        hanna@contoso.test: user hanna\n",
			"    partner@fabrikam.example: external\n",
			"  stored in: bo, info, finn, hanna\n",
			"  sent on to: partner@fabrikam.example\n",
		}},
		{"forwarding", away, "fwd@contoso.test", []string{
			"  forwarding to anna@contoso.test (user); keep_copy = false\n",
			"  stored in: anna\n",
		}},
		{"automatic reply in force", away, "anna@contoso.test", []string{
			"  automatic reply: enabled from 2027-01-01T00:00:00Z until 2027-01-10T00:00:00Z; in force now\n",
			"    internal senders: answered\n",
			"    external senders: contacts answered (1 in the file, and its address book)\n",
		}},
		{"group member with an automatic reply", away, "quiet@contoso.test", []string{
			"    anna@contoso.test: user anna (automatic reply in force)\n",
		}},
		{"unknown local", d, "ghost@contoso.test", []string{"no such address in a local domain"}},
		{"external", d, "x@fabrikam.example", []string{"not a local domain"}},
		{"nonsense", d, "nonsense", []string{"not a valid address"}},
	}
	for _, tt := range tests {
		got := tt.d.Explain(tt.addr, day(5))
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: Explain(%q) =\n%s\nmissing %q", tt.name, tt.addr, got, w)
			}
		}
	}
	if got := away.Explain("anna@contoso.test", day(20)); !strings.Contains(got, "; not in force now\n") {
		t.Errorf("after the window:\n%s", got)
	}
}
