package policy

import (
	"slices"
	"testing"
)

func TestRights(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		name, user, mailbox string
		want                Rights
	}{
		{"own mailbox", "anna", "anna", RightRead | RightFull | RightSendAs},
		{"direct member", "anna", "info", RightFull | RightSendAs},
		{"member through a group", "finn", "info", RightFull | RightSendAs},
		{"member through nested groups", "hanna", "info", RightFull | RightSendAs},
		{"read grant", "carl", "info", RightRead},
		{"full grant", "dora", "info", RightFull},
		{"send on behalf grant", "erik", "info", RightSendOnBehalf},
		{"grant keyed by an alias", "bo", "info", RightRead},
		{"grant to a group", "ivy", "info", RightRead},
		{"non-member", "gus", "info", 0},
		{"other shared mailbox", "anna", "billing", 0},
		{"someone else's mailbox", "anna", "bo", 0},
		{"shared mailbox is no user", "info", "info", 0},
		{"group is no user", "sales", "info", 0},
		{"unknown user", "ghost", "info", 0},
		{"unknown mailbox", "anna", "ghost", 0},
	}
	for _, tt := range tests {
		if got := d.Rights(tt.user, tt.mailbox); got != tt.want {
			t.Errorf("%s: Rights(%s, %s) = %s, want %s", tt.name, tt.user, tt.mailbox, got, tt.want)
		}
	}
}

func TestRightsMemberAndGrantCombine(t *testing.T) {
	t.Parallel()
	info := shared("info", "anna@contoso.test", "team@contoso.test")
	info.Grants = map[string]Rights{"anna@contoso.test": RightSendOnBehalf, "team@contoso.test": RightRead}
	d := mustDir(t, []Mailbox{user("anna"), user("bo"), info}, []Group{group("team", "bo@contoso.test", "info@contoso.test", "x@fabrikam.example")})
	if got, want := d.Rights("anna", "info"), RightFull|RightSendAs|RightSendOnBehalf; got != want {
		t.Errorf("anna: %s, want %s", got, want)
	}
	// The group holds a shared mailbox and an external address: they are
	// nobody's users and get nothing, bo gets both membership and grant.
	if got, want := d.Rights("bo", "info"), RightRead|RightFull|RightSendAs; got != want {
		t.Errorf("bo: %s, want %s", got, want)
	}
}

func TestReachable(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		user string
		want []string
	}{
		{"anna", []string{"info"}},
		{"carl", []string{"billing", "info"}}, // by address: billing@ < info@
		{"erik", []string{"info"}},
		{"gus", nil},
		{"info", nil},
	}
	for _, tt := range tests {
		if got := ids(d.Reachable(tt.user)); !slices.Equal(got, tt.want) {
			t.Errorf("Reachable(%s) = %q, want %q", tt.user, got, tt.want)
		}
	}
}

func TestSendAs(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		user string
		want []string
	}{
		{"anna", []string{"anna@contoso.test", "anna@fourthcoffee.test", "info@contoso.test", "kontakt@contoso.test", "support@contoso.test"}},
		{"hanna", []string{"hanna@contoso.test", "info@contoso.test", "kontakt@contoso.test"}},
		{"carl", []string{"billing@contoso.test", "carl@contoso.test"}}, // read on info: no send-as
		{"erik", []string{"erik@contoso.test"}},                         // on behalf is not send-as
		{"info", nil},
		{"ghost", nil},
	}
	for _, tt := range tests {
		if got := d.SendAs(tt.user); !slices.Equal(got, tt.want) {
			t.Errorf("SendAs(%s) = %q, want %q", tt.user, got, tt.want)
		}
	}
}

func TestRightsString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    Rights
		want string
	}{
		{0, "none"},
		{RightRead, "read"},
		{RightFull | RightSendAs, "full,send_as"},
		{RightRead | RightFull | RightSendAs | RightSendOnBehalf, "read,full,send_as,send_on_behalf"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}
