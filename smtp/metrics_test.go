package smtp

import (
	"errors"
	"io"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/policy"
)

// TestRefusalReason maps the replies the server sends to the fixed reasons.
func TestRefusalReason(t *testing.T) {
	t.Parallel()
	reply := func(code int, a, b, c int) error {
		return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{a, b, c}}
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{refusalError(&policy.Refusal{Code: 550, Enhanced: [3]int{5, 1, 1}}), "unknown_recipient"},
		{refusalError(&policy.Refusal{Code: 553, Enhanced: [3]int{5, 1, 3}}), "bad_address"},
		{refusalError(&policy.Refusal{Code: 554, Enhanced: [3]int{5, 7, 1}}), "policy"},
		{errQuota, "quota"},
		{errTooBig, "size"},
		{errTooManyHops, "loop"},
		{errBareLF, "protocol"},
		{errLineTooLong, "protocol"},
		{gosmtp.ErrAuthRequired, "policy"},
		{reply(550, 5, 7, 23), "sender_auth"},
		{reply(451, 4, 3, 0), "internal"},
		{errShuttingDown, "other"},
		{reply(250, 2, 0, 0), ""},
		{io.EOF, ""},
		{nil, ""},
		{errors.Join(errors.New("wrapped"), errQuota), "quota"},
	} {
		if got := refusalReason(c.err); got != c.want {
			t.Errorf("refusalReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
