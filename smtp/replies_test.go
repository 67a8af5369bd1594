package smtp

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

// TestReplyTable: every refusal the agent and the policy give has its one
// reply, found through any wrapping; anything else is no refusal.
func TestReplyTable(t *testing.T) {
	t.Parallel()
	rcpt := func(addr string, err error) error { return &policy.RecipientError{Address: addr, Err: err} }
	tests := []struct {
		err  error
		want string // code, enhanced code and text; "" = not a refusal
	}{
		{rcpt("", policy.ErrBadAddress), "553 5.1.3 Bad recipient address syntax"},
		{rcpt("nobody@contoso.test", policy.ErrNoSuchMailbox), "550 5.1.1 <nobody@contoso.test>: no such mailbox"},
		{rcpt("x@fabrikam.example", policy.ErrRelayDenied), "554 5.7.1 Relay access denied"},
		{rcpt("sales@contoso.test", policy.ErrLocalSendersOnly), "550 5.7.1 <sales@contoso.test>: this group accepts mail from local senders only"},
		{rcpt("anna@contoso.test", policy.ErrTooManyHops), "554 5.4.6 Too many hops: mail loop detected"},
		{fmt.Errorf("<anna@contoso.test>: %w", delivery.ErrMailboxFull), "552 5.2.2 Mailbox full: quota exceeded"},
		{delivery.ErrTooManyRecipients, "452 4.5.3 Too many recipients"},
		{fmt.Errorf("<SRS0=x@contoso.test>: %w", delivery.ErrBounceOnly), "550 5.7.1 <SRS0=x@contoso.test>: this address accepts only delivery status notifications"},
		{&policy.SendAsError{Address: "ceo@contoso.test"}, "550 5.7.1 Not allowed to send as <ceo@contoso.test>"},
		{&policy.SendAsError{}, "550 5.7.1 Sender address not allowed"},
		{&delivery.HeaderCountError{Field: "From", Count: 2}, "550 5.7.1 Message has 2 From: header fields; exactly one is required"},
		{&delivery.HeaderCountError{Field: "Sender", Count: 2}, "550 5.7.1 Message has 2 Sender: header fields; at most one is allowed"},
		{&delivery.AuthError{Reason: "rejected by the DMARC policy of fabrikam.example"}, "550 5.7.1 rejected by the DMARC policy of fabrikam.example"},
		{fmt.Errorf("data: %w", &delivery.AuthError{Temporary: true, Reason: "cannot check the sender's DNS records now, try again later"}), "451 4.7.0 cannot check the sender's DNS records now, try again later"},
		{fmt.Errorf("deliver: %w", errTooBig), "552 5.3.4 Message size exceeds fixed limit"},
		{fmt.Errorf("deliver: %w", fmt.Errorf("%w: dial error", store.ErrUnavailable)), "451 4.3.0 Mail store temporarily unavailable, try again later"},
		{errors.New("disk on fire"), ""},
		{context.Canceled, ""},
	}
	for _, tt := range tests {
		r := reply(tt.err)
		got := ""
		if r != nil {
			got = fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2], r.Message)
		}
		if got != tt.want {
			t.Errorf("reply(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
