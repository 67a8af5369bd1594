package smtp

import (
	"errors"
	"io"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/policy"
)

// TestRefusalReason maps the replies the server sends to the fixed reasons.
func TestRefusalReason(t *testing.T) {
	t.Parallel()
	coded := func(code int, a, b, c int) error {
		return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{a, b, c}}
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{reply(policy.ErrNoSuchMailbox), "unknown_recipient"},
		{reply(policy.ErrBadAddress), "bad_address"},
		{reply(policy.ErrRelayDenied), "policy"},
		{reply(delivery.ErrMailboxFull), "quota"},
		{reply(policy.ErrTooManyHops), "loop"},
		{reply(delivery.ErrTooManyRecipients), "protocol"},
		{errTooBig, "size"},
		{errBadLineEndings, "protocol"},
		{errLineTooLong, "protocol"},
		{gosmtp.ErrAuthRequired, "policy"},
		{coded(550, 5, 7, 23), "sender_auth"},
		{coded(451, 4, 3, 0), "internal"},
		{errShuttingDown, "other"},
		{coded(250, 2, 0, 0), ""},
		{io.EOF, ""},
		{nil, ""},
		{errors.Join(errors.New("wrapped"), reply(delivery.ErrMailboxFull)), "quota"},
	} {
		if got := refusalReason(c.err); got != c.want {
			t.Errorf("refusalReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
