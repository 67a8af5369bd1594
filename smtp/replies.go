package smtp

import (
	"errors"
	"fmt"

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/policy"
)

// The replies of SPEC §4 and §5. go-smtp sends the text of any other error
// to the client as it is, so every refusal is an *SMTPError.
var (
	errTooBig       = &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed limit"}
	errQuota        = &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full: quota exceeded"}
	errBareLF       = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2}, Message: "Bare LF line endings are not accepted; use CRLF"}
	errLineTooLong  = &gosmtp.SMTPError{Code: 500, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2}, Message: "Line too long"}
	errTooManyHops  = &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 4, 6}, Message: "Too many hops: mail loop detected"}
	errShuttingDown = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "Server shutting down, try again later"}
	errSMTPDisabled = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "SMTP is disabled for this mailbox"}
)

// refusalError turns a policy refusal into a reply.
func refusalError(r *policy.Refusal) error {
	return &gosmtp.SMTPError{
		Code:         r.Code,
		EnhancedCode: gosmtp.EnhancedCode{r.Enhanced[0], r.Enhanced[1], r.Enhanced[2]},
		Message:      r.Message,
	}
}

// sendAsError turns a send-as refusal into 550 5.7.1 naming the address.
func sendAsError(err error) error {
	msg := "Sender address not allowed"
	var sa *policy.SendAsError
	if errors.As(err, &sa) {
		if sa.Address != "" {
			msg = fmt.Sprintf("Not allowed to send as <%s>", sa.Address)
		}
	}
	return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: msg}
}
