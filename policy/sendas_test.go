package policy

import (
	"errors"
	"testing"
)

func TestCheckSubmission(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		name     string
		user     string
		mailFrom string
		from     []string
		sender   string
		bad      string // the address the refusal names; "-" means allowed
	}{
		{"own address", "anna", "anna@contoso.test", []string{"anna@contoso.test"}, "", "-"},
		{"own alias", "anna", "support@contoso.test", []string{"Support@Contoso.Test"}, "", "-"},
		{"alias in another domain", "anna", "ANNA@contoso.test", []string{"anna@fourthcoffee.test"}, "", "-"},
		{"own subaddress", "anna", "anna+lists@contoso.test", []string{"anna+lists@contoso.test"}, "", "-"},
		{"own Sender", "anna", "anna@contoso.test", []string{"anna@contoso.test"}, "support@contoso.test", "-"},
		{"member sends as shared", "anna", "info@contoso.test", []string{"info@contoso.test"}, "", "-"},
		{"member sends as shared alias", "anna", "anna@contoso.test", []string{"kontakt@contoso.test"}, "", "-"},
		{"member sends as shared subaddress", "anna", "info+sales@contoso.test", []string{"info+sales@contoso.test"}, "", "-"},
		{"member through group", "finn", "finn@contoso.test", []string{"info@contoso.test"}, "", "-"},
		{"member through nested groups", "hanna", "info@contoso.test", []string{"info@contoso.test"}, "", "-"},
		{"member with own Sender", "anna", "info@contoso.test", []string{"info@contoso.test"}, "anna@contoso.test", "-"},
		{"non-member", "gus", "gus@contoso.test", []string{"info@contoso.test"}, "", "info@contoso.test"},
		{"read grant cannot send", "carl", "carl@contoso.test", []string{"info@contoso.test"}, "", "info@contoso.test"},
		{"full grant cannot send", "dora", "dora@contoso.test", []string{"info@contoso.test"}, "", "info@contoso.test"},
		{"on behalf", "erik", "erik@contoso.test", []string{"info@contoso.test"}, "erik@contoso.test", "-"},
		{"on behalf, MAIL FROM shared", "erik", "info@contoso.test", []string{"info@contoso.test"}, "erik@contoso.test", "-"},
		{"on behalf, MAIL FROM shared alias", "erik", "kontakt@contoso.test", []string{"info@contoso.test"}, "erik@contoso.test", "-"},
		{"on behalf without Sender", "erik", "erik@contoso.test", []string{"info@contoso.test"}, "", "info@contoso.test"},
		{"on behalf, Sender someone else", "erik", "erik@contoso.test", []string{"info@contoso.test"}, "anna@contoso.test", "anna@contoso.test"},
		{"on behalf, MAIL FROM someone else", "erik", "anna@contoso.test", []string{"info@contoso.test"}, "erik@contoso.test", "anna@contoso.test"},
		{"MAIL FROM of someone else", "anna", "bo@contoso.test", []string{"anna@contoso.test"}, "", "bo@contoso.test"},
		{"arbitrary From", "anna", "anna@contoso.test", []string{"ceo@bigcorp.example"}, "", "ceo@bigcorp.example"},
		{"second From not allowed", "anna", "anna@contoso.test", []string{"anna@contoso.test", "bo@contoso.test"}, "", "bo@contoso.test"},
		{"envelope named first", "anna", "bo@contoso.test", []string{"carl@contoso.test"}, "", "bo@contoso.test"},
		{"forged Sender", "anna", "anna@contoso.test", []string{"anna@contoso.test"}, "boss@contoso.test", "boss@contoso.test"},
		{"no From", "anna", "anna@contoso.test", nil, "", ""},
		{"null MAIL FROM", "anna", "", []string{"anna@contoso.test"}, "", ""},
		{"unknown user", "ghost", "ghost@contoso.test", []string{"ghost@contoso.test"}, "", "ghost@contoso.test"},
		{"shared cannot submit", "info", "info@contoso.test", []string{"info@contoso.test"}, "", "info@contoso.test"},
	}
	for _, tt := range tests {
		err := d.CheckSubmission(tt.user, tt.mailFrom, tt.from, tt.sender)
		if tt.bad == "-" {
			if err != nil {
				t.Errorf("%s: refused: %v", tt.name, err)
			}
			// What the whole check allows, MAIL FROM alone must not refuse.
			if err := d.CheckEnvelopeSender(tt.user, tt.mailFrom); err != nil {
				t.Errorf("%s: refused at MAIL FROM: %v", tt.name, err)
			}
			continue
		}
		var sa *SendAsError
		if !errors.As(err, &sa) {
			t.Errorf("%s: error %v, want a *SendAsError", tt.name, err)
			continue
		}
		if sa.Address != tt.bad {
			t.Errorf("%s: refusal names %q, want %q", tt.name, sa.Address, tt.bad)
		}
	}
}

func TestCheckEnvelopeSender(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	for _, tt := range []struct {
		user, mailFrom string
		ok             bool
	}{
		{"anna", "Anna@Contoso.test", true},
		{"anna", "anna+x@contoso.test", true},
		{"anna", "info@contoso.test", true},    // member
		{"erik", "kontakt@contoso.test", true}, // send_on_behalf: the shared mailbox's address
		{"anna", "bo@contoso.test", false},
		{"gus", "info@contoso.test", false},
		{"carl", "info@contoso.test", false}, // read grant
		{"anna", "", false},
		{"ghost", "ghost@contoso.test", false},
		{"info", "info@contoso.test", false},
	} {
		err := d.CheckEnvelopeSender(tt.user, tt.mailFrom)
		if tt.ok != (err == nil) {
			t.Errorf("%s as %q: %v, want allowed=%v", tt.user, tt.mailFrom, err, tt.ok)
		}
		var sa *SendAsError
		if err != nil && (!errors.As(err, &sa) || sa.Address != normalize(tt.mailFrom)) {
			t.Errorf("%s as %q: refusal %v does not name the sender", tt.user, tt.mailFrom, err)
		}
	}
}

func TestSendAsErrorText(t *testing.T) {
	t.Parallel()
	if got, want := (&SendAsError{Address: "bo@contoso.test"}).Error(), "not allowed to send as <bo@contoso.test>"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSendAsShared(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		user string
		from []string
		want string // "" = none
	}{
		{"anna", []string{"info@contoso.test"}, "info"},
		{"anna", []string{"Kontakt@Contoso.Test"}, "info"},
		{"anna", []string{"anna@contoso.test"}, ""},
		{"anna", []string{"anna@contoso.test", "info@contoso.test"}, "info"},
		{"erik", []string{"info@contoso.test"}, "info"}, // on behalf
		{"carl", []string{"info@contoso.test"}, ""},     // read only
		{"gus", []string{"info@contoso.test"}, ""},
		{"anna", nil, ""},
	}
	for _, tt := range tests {
		mb, ok := d.SendAsShared(tt.user, tt.from)
		got := ""
		if ok {
			got = mb.ID
		}
		if got != tt.want {
			t.Errorf("SendAsShared(%s, %q) = %q, want %q", tt.user, tt.from, got, tt.want)
		}
	}
}
