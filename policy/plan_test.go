package policy

import (
	"errors"
	"slices"
	"testing"
)

// outcome is the routing part of a Plan, in a comparable form.
type outcome struct {
	kept     []string // mailbox IDs, sorted
	remote   []string
	forwards []string
	refused  map[string]error
}

func outcomeOf(p Plan) outcome {
	o := outcome{remote: p.Remote}
	for _, f := range p.Forwards {
		o.forwards = append(o.forwards, f.To)
	}
	seen := map[string]bool{}
	for _, ld := range p.Deliveries {
		o.kept = append(o.kept, ld.MailboxID)
		seen[ld.MailboxID] = true
	}
	o.kept = sorted(o.kept)
	if len(p.Refusals) > 0 {
		o.refused = map[string]error{}
		for rcpt, err := range p.Refusals {
			o.refused[rcpt] = errors.Unwrap(err)
		}
	}
	return o
}

func (o outcome) equal(w outcome) bool {
	if len(o.refused) != len(w.refused) {
		return false
	}
	for k, v := range w.refused {
		if o.refused[k] != v {
			return false
		}
	}
	return slices.Equal(o.kept, w.kept) && slices.Equal(o.remote, w.remote) && slices.Equal(o.forwards, w.forwards)
}

func TestPlanRecipients(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	everyoneInSales := []string{"bo", "finn", "hanna", "info"}
	tests := []struct {
		name  string
		rcpts []string
		auth  string
		hops  int
		want  outcome
	}{
		{"user", []string{"anna@contoso.test"}, "", 0, outcome{kept: []string{"anna"}}},
		{"alias, subaddress and case", []string{"Support+Tag@CONTOSO.TEST"}, "", 0, outcome{kept: []string{"anna"}}},
		{"one copy for several addresses", []string{"anna@contoso.test", "support@contoso.test", "anna+x@contoso.test"}, "", 0,
			outcome{kept: []string{"anna"}}},
		{"nested group, shared member, external member once", []string{"sales@contoso.test"}, "bo", 0,
			outcome{kept: everyoneInSales, remote: []string{"partner@fabrikam.example"}}},
		{"overlapping groups", []string{"news@contoso.test", "sales@contoso.test", "bo@contoso.test"}, "bo", 0,
			outcome{kept: sorted(append([]string{"anna"}, everyoneInSales...)), remote: []string{"partner@fabrikam.example"}}},
		{"open group containing a closed one", []string{"news@contoso.test"}, "", 0,
			outcome{kept: sorted(append([]string{"anna"}, everyoneInSales...)), remote: []string{"partner@fabrikam.example"}}},
		{"closed group from outside", []string{"sales@contoso.test", "anna@contoso.test"}, "", 0,
			outcome{kept: []string{"anna"}, refused: map[string]error{"sales@contoso.test": ErrLocalSendersOnly}}},
		{"unknown local recipient", []string{"ghost@contoso.test", "bo@contoso.test"}, "", 0,
			outcome{kept: []string{"bo"}, refused: map[string]error{"ghost@contoso.test": ErrNoSuchMailbox}}},
		{"external recipient of a local sender", []string{"Someone@Fabrikam.example", "someone@fabrikam.example", "anna@contoso.test"}, "bo", 0,
			outcome{kept: []string{"anna"}, remote: []string{"Someone@Fabrikam.example"}}},
		{"no relay from outside", []string{"someone@fabrikam.example"}, "", 0,
			outcome{refused: map[string]error{"someone@fabrikam.example": ErrRelayDenied}}},
		{"30 Received headers pass", []string{"anna@contoso.test"}, "", 30, outcome{kept: []string{"anna"}}},
		{"31 Received headers are a loop", []string{"anna@contoso.test", "sales@contoso.test"}, "", 31,
			outcome{refused: map[string]error{"anna@contoso.test": ErrTooManyHops, "sales@contoso.test": ErrTooManyHops}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := d.Plan(Inbound{From: "x@fabrikam.example", Recipients: tt.rcpts, Authenticated: tt.auth,
				Header: Header{ReceivedCount: tt.hops}, Now: day(1)})
			if got := outcomeOf(p); !got.equal(tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			for _, ld := range p.Deliveries {
				mb, _ := d.Mailbox(ld.MailboxID)
				if ld.DeliveredTo != mb.Address {
					t.Errorf("%s: DeliveredTo %q, want %q", ld.MailboxID, ld.DeliveredTo, mb.Address)
				}
			}
		})
	}
}

func TestPlanRefusalText(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	p := d.Plan(Inbound{From: "x@fabrikam.example", Recipients: []string{"anna@contoso.test"}, Header: Header{ReceivedCount: 31}})
	got := p.Refusals["anna@contoso.test"]
	if !errors.Is(got, ErrTooManyHops) || got.Error() != "<anna@contoso.test>: too many hops" {
		t.Errorf("refusal %v", got)
	}
}

func TestPlanForwarding(t *testing.T) {
	t.Parallel()
	a, b, c := user("a", "a.alias@contoso.test"), user("b"), user("c")
	tests := []struct {
		name        string
		mailboxes   []Mailbox
		groups      []Group
		rcpts       []string
		deliveredTo []string
		want        outcome
	}{
		{"chain a->b->c", []Mailbox{forwarding(a, false, "b@contoso.test"), forwarding(b, false, "c@contoso.test"), c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"c"}}},
		{"chain with keep_copy", []Mailbox{forwarding(a, true, "b@contoso.test"), forwarding(b, false, "c@contoso.test"), c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"a", "c"}}},
		{"loop a->b->a keeps one copy", []Mailbox{forwarding(a, false, "b@contoso.test"), forwarding(b, false, "a@contoso.test"), c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"b"}}},
		{"loop through an alias", []Mailbox{forwarding(a, false, "b@contoso.test"), forwarding(b, false, "A.Alias@contoso.test"), c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"b"}}},
		{"loop a->b->c->a", []Mailbox{forwarding(a, false, "b@contoso.test"), forwarding(b, false, "c@contoso.test"), forwarding(c, false, "a@contoso.test")}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"c"}}},
		{"loop with keep_copy everywhere", []Mailbox{forwarding(a, true, "b@contoso.test"), forwarding(b, true, "a@contoso.test"), c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"a", "b"}}},
		{"loop addressed to both", []Mailbox{forwarding(a, false, "b@contoso.test"), forwarding(b, false, "a@contoso.test"), c}, nil,
			[]string{"a@contoso.test", "b@contoso.test"}, nil, outcome{kept: []string{"b"}}},
		{"forward to self", []Mailbox{forwarding(a, false, "a@contoso.test"), b, c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"a"}}},
		{"external target", []Mailbox{forwarding(a, false, "a@home.example"), b, c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{forwards: []string{"a@home.example"}}},
		{"external target with keep_copy", []Mailbox{forwarding(a, true, "a@home.example"), b, c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"a"}, forwards: []string{"a@home.example"}}},
		{"targets deduplicated", []Mailbox{forwarding(a, false, "X@home.example", "x@home.example", "b@contoso.test"), forwarding(b, false, "x@HOME.example"), c}, nil,
			[]string{"a@contoso.test"}, nil, outcome{forwards: []string{"X@home.example"}}},
		{"already delivered here: no forwarding", []Mailbox{forwarding(a, false, "a@home.example"), b, c}, nil,
			[]string{"a@contoso.test"}, []string{"a@contoso.test"}, outcome{kept: []string{"a"}}},
		{"already delivered to an alias", []Mailbox{forwarding(a, false, "a@home.example"), b, c}, nil,
			[]string{"a@contoso.test"}, []string{"a.alias@contoso.test"}, outcome{kept: []string{"a"}}},
		{"delivered elsewhere before: forwarding goes on", []Mailbox{forwarding(a, false, "a@home.example"), b, c}, nil,
			[]string{"a@contoso.test"}, []string{"b@contoso.test"}, outcome{forwards: []string{"a@home.example"}}},
		{"forward into a group", []Mailbox{forwarding(a, false, "g@contoso.test"), b, c}, []Group{group("g", "b@contoso.test", "ext@fabrikam.example")},
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"b"}, remote: []string{"ext@fabrikam.example"}}},
		{"forward into a group that leads back", []Mailbox{forwarding(a, false, "g@contoso.test"), b, c}, []Group{group("g", "a@contoso.test")},
			[]string{"a@contoso.test"}, nil, outcome{kept: []string{"a"}}},
		{"target also addressed, it first", []Mailbox{forwarding(a, false, "b@contoso.test"), b, c}, nil,
			[]string{"b@contoso.test", "a@contoso.test"}, nil, outcome{kept: []string{"b"}}},
		{"target also addressed, it last", []Mailbox{forwarding(a, false, "b@contoso.test"), b, c}, nil,
			[]string{"a@contoso.test", "b@contoso.test"}, nil, outcome{kept: []string{"b"}}},
		{"group member forwards", []Mailbox{forwarding(a, false, "a@home.example"), b, c}, []Group{group("g", "a@contoso.test", "b@contoso.test")},
			[]string{"g@contoso.test"}, nil, outcome{kept: []string{"b"}, forwards: []string{"a@home.example"}}},
		{"forward target is also a group's external member", []Mailbox{forwarding(a, false, "ext@fabrikam.example"), b, c},
			[]Group{group("g", "a@contoso.test", "EXT@fabrikam.example")},
			[]string{"g@contoso.test"}, nil, outcome{remote: []string{"EXT@fabrikam.example"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := mustDir(t, tt.mailboxes, tt.groups)
			p := d.Plan(Inbound{From: "x@fabrikam.example", Recipients: tt.rcpts, Authenticated: "c",
				Header: Header{DeliveredTo: tt.deliveredTo}, Now: day(1)})
			if got := outcomeOf(p); !got.equal(tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			seen := map[string]bool{}
			for _, ld := range p.Deliveries {
				if seen[ld.MailboxID] {
					t.Errorf("%s has two copies", ld.MailboxID)
				}
				seen[ld.MailboxID] = true
			}
			if len(p.Deliveries)+len(p.Remote)+len(p.Forwards) == 0 {
				t.Error("the message went nowhere")
			}
		})
	}
}
