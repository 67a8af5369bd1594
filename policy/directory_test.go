package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewDirectoryRefuses(t *testing.T) {
	t.Parallel()
	cycleA := group("a", "b@contoso.test")
	cycleB := group("b", "a@contoso.test")
	badKind := user("x")
	badKind.Kind = KindGroup
	userWithMembers := user("u")
	userWithMembers.Members = []string{"anna@contoso.test"}
	badWindow := user("w")
	badWindow.AutoReply = &AutoReply{Enabled: true, Start: day(10), End: day(9)}
	tests := []struct {
		name      string
		mailboxes []Mailbox
		groups    []Group
		want      []string // every problem must be named
	}{
		{"duplicate address", []Mailbox{user("anna"), user("bo", "anna@contoso.test")}, nil,
			[]string{"user bo: address anna@contoso.test is already used by user anna"}},
		{"duplicate address in other case", []Mailbox{user("anna")}, []Group{{ID: "g", Address: "ANNA@contoso.test"}},
			[]string{"group g: address anna@contoso.test is already used by user anna"}},
		{"alias twice", []Mailbox{user("anna", "x@contoso.test", "X@contoso.test")}, nil,
			[]string{"user anna: address x@contoso.test is already used by user anna"}},
		{"outside domains", []Mailbox{user("anna", "anna@elsewhere.example")}, nil,
			[]string{"user anna: address anna@elsewhere.example is outside the local domains"}},
		{"invalid address", []Mailbox{{ID: "n", Kind: KindUser, Address: "no-at-sign"}}, nil,
			[]string{`user n: "no-at-sign" is not a valid address`}},
		{"unknown member", []Mailbox{shared("info", "nobody@contoso.test")}, nil,
			[]string{"shared info: member nobody@contoso.test resolves to nothing"}},
		{"external member of shared", []Mailbox{shared("info", "x@fabrikam.example")}, nil,
			[]string{"shared info: member x@fabrikam.example is not a local user or group"}},
		{"shared member of shared", []Mailbox{shared("info", "billing@contoso.test"), shared("billing")}, nil,
			[]string{"shared info: member billing@contoso.test is a shared mailbox"}},
		{"grant to nothing", []Mailbox{func() Mailbox {
			mb := shared("info")
			mb.Grants = map[string]Rights{"ghost@contoso.test": RightRead}
			return mb
		}()}, nil, []string{"shared info: grant to ghost@contoso.test resolves to nothing"}},
		{"unknown group member", nil, []Group{group("g", "ghost@contoso.test", "ok@fabrikam.example")},
			[]string{"group g: member ghost@contoso.test resolves to nothing"}},
		{"forward to nothing", []Mailbox{forwarding(user("anna"), false, "ghost@contoso.test")}, nil,
			[]string{"user anna: forwarding target ghost@contoso.test resolves to nothing"}},
		{"cycle", nil, []Group{cycleA, cycleB}, []string{"group cycle a -> b -> a"}},
		{"self cycle", nil, []Group{group("s", "s@contoso.test")}, []string{"group s: group cycle s -> s"}},
		{"bad kind", []Mailbox{badKind}, nil, []string{"mailbox x: kind must be user or shared"}},
		{"duplicate id", []Mailbox{user("anna"), func() Mailbox { mb := user("anna"); mb.Address = "a2@contoso.test"; return mb }()}, nil,
			[]string{"user anna: id is used twice"}},
		{"members on a user", []Mailbox{user("anna"), userWithMembers}, nil,
			[]string{"user u: only shared mailboxes have members"}},
		{"window backwards", []Mailbox{badWindow}, nil, []string{"user w: automatic reply ends before it starts"}},
		{"all problems together", []Mailbox{user("anna", "anna@elsewhere.example"), shared("info", "ghost@contoso.test")}, nil,
			[]string{"anna@elsewhere.example", "ghost@contoso.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := NewDirectory(DirectoryOptions{Domains: []string{"contoso.test"}, Mailboxes: tt.mailboxes, Groups: tt.groups})
			if err == nil {
				t.Fatalf("NewDirectory accepted it: %v", d)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewDirectoryCopiesItsInput(t *testing.T) {
	t.Parallel()
	mb := user("anna", "Support@Contoso.TEST")
	mb.Address = "Anna@Contoso.Test"
	mb.Forward = &Forward{To: []string{"x@home.example"}}
	opts := DirectoryOptions{Domains: []string{"Contoso.Test"}, Mailboxes: []Mailbox{mb}}
	d, err := NewDirectory(opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Mailboxes[0].Aliases[0] = "changed@contoso.test"
	opts.Mailboxes[0].Forward.To[0] = "changed@home.example"
	got, _ := d.Mailbox("anna")
	if got.Address != "anna@contoso.test" || got.Aliases[0] != "support@contoso.test" {
		t.Errorf("addresses not stored in lower case or not copied: %q %q", got.Address, got.Aliases)
	}
	if got.Forward.To[0] != "x@home.example" {
		t.Errorf("forward targets not copied: %q", got.Forward.To)
	}
	if !d.IsLocalDomain("CONTOSO.test") || d.IsLocalDomain("fabrikam.example") {
		t.Error("IsLocalDomain is wrong")
	}
	if got := d.Domains(); !slices.Equal(got, []string{"contoso.test"}) {
		t.Errorf("Domains = %q", got)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		addr string
		want Target
		ok   bool
	}{
		{"anna@contoso.test", Target{KindUser, "anna", "anna@contoso.test", false}, true},
		{"ANNA@Contoso.Test", Target{KindUser, "anna", "anna@contoso.test", false}, true},
		{" anna@contoso.test ", Target{KindUser, "anna", "anna@contoso.test", false}, true},
		{"support@contoso.test", Target{KindUser, "anna", "anna@contoso.test", true}, true},
		{"anna@fourthcoffee.test", Target{KindUser, "anna", "anna@contoso.test", true}, true},
		{"anna+tag@contoso.test", Target{KindUser, "anna", "anna@contoso.test", false}, true},
		{"Support+Tag@CONTOSO.test", Target{KindUser, "anna", "anna@contoso.test", true}, true},
		{"anna+a+b@contoso.test", Target{KindUser, "anna", "anna@contoso.test", false}, true},
		{"anna+special@contoso.test", Target{KindUser, "annaplus", "anna+special@contoso.test", false}, true},
		{"kontakt@contoso.test", Target{KindShared, "info", "info@contoso.test", true}, true},
		{"sales@contoso.test", Target{KindGroup, "sales", "sales@contoso.test", false}, true},
		{"sales+x@contoso.test", Target{KindGroup, "sales", "sales@contoso.test", false}, true},
		{"nobody@contoso.test", Target{}, false},
		{"+tag@contoso.test", Target{}, false},
		{"anna@fabrikam.example", Target{}, false},
		{"anna", Target{}, false},
		{"", Target{}, false},
	}
	for _, tt := range tests {
		got, ok := d.Resolve(tt.addr)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Resolve(%q) = %+v, %t; want %+v, %t", tt.addr, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	tests := []struct {
		addr    string
		wantID  string
		wantErr error
	}{
		{"anna@contoso.test", "anna", nil},
		{"Support@Contoso.Test", "anna", nil},
		{"anna@fourthcoffee.test", "anna", nil},
		{"anna+tag@contoso.test", "", ErrUnknownUser},
		{"info@contoso.test", "", ErrNotUser},
		{"kontakt@contoso.test", "", ErrNotUser},
		{"sales@contoso.test", "", ErrNotUser},
		{"nobody@contoso.test", "", ErrUnknownUser},
		{"anna", "", ErrUnknownUser},
	}
	for _, tt := range tests {
		mb, err := d.Login(tt.addr)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Login(%q) error = %v, want %v", tt.addr, err, tt.wantErr)
			continue
		}
		if err == nil && mb.ID != tt.wantID {
			t.Errorf("Login(%q) = %s, want %s", tt.addr, mb.ID, tt.wantID)
		}
	}
}

func TestListsAndLookups(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	if got, want := ids(d.Mailboxes()), []string{"anna", "annaplus", "billing", "bo", "carl", "dora", "erik", "finn", "gus", "hanna", "info", "ivy"}; !slices.Equal(got, want) {
		t.Errorf("Mailboxes = %q, want %q", got, want)
	}
	var groups []string
	for _, g := range d.Groups() {
		groups = append(groups, g.ID)
	}
	if want := []string{"helpdesk", "l2", "news", "readers", "sales"}; !slices.Equal(groups, want) {
		t.Errorf("Groups = %q, want %q", groups, want)
	}
	if got, want := d.Addresses("anna"), []string{"anna@contoso.test", "support@contoso.test", "anna@fourthcoffee.test"}; !slices.Equal(got, want) {
		t.Errorf("Addresses(anna) = %q, want %q", got, want)
	}
	if got := d.Addresses("nobody"); got != nil {
		t.Errorf("Addresses(nobody) = %q", got)
	}
	if _, ok := d.Mailbox("sales"); ok {
		t.Error("Mailbox(sales) found a group")
	}
	if g, ok := d.Group("sales"); !ok || g.Address != "sales@contoso.test" {
		t.Errorf("Group(sales) = %v, %t", g, ok)
	}
}
