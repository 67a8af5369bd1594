package smtp

import (
	"errors"
	"fmt"

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/delivery"
	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

// The replies of SPEC §4 and §5 that are decided here, in the protocol.
// go-smtp sends the text of any other error to the client as it is, so
// every refusal is an *SMTPError.
var (
	errTooBig         = &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed limit"}
	errBadLineEndings = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2}, Message: "Bare CR or LF, or NUL, in message: use CRLF line endings"}
	errLineTooLong    = &gosmtp.SMTPError{Code: 500, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2}, Message: "Line too long"}
	errShuttingDown   = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "Server shutting down, try again later"}
	errSMTPDisabled   = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "SMTP is disabled for this mailbox"}
	errTooManyUnknown = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Too many unknown recipients, closing connection"}
	// errStoreUnavailable: the mail store (a database) cannot be reached
	// for now (SPEC §13); the sender keeps the message and tries again.
	errStoreUnavailable = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "Mail store temporarily unavailable, try again later"}
)

// reply is the one place a refusal of the delivery agent or the policy
// becomes an SMTP reply. It returns nil for an error that is no refusal
// (a failure here), which the caller answers with 451 and a reference.
func reply(err error) *gosmtp.SMTPError {
	var (
		smtpErr *gosmtp.SMTPError
		sendAs  *policy.SendAsError
		count   *delivery.HeaderCountError
		auth    *delivery.AuthError
	)
	switch {
	case errors.As(err, &smtpErr):
		return smtpErr
	case errors.As(err, &sendAs):
		return sendAsReply(sendAs)
	case errors.As(err, &auth) && auth.Temporary:
		return refusal(451, 4, 7, 0, auth.Reason)
	case errors.As(err, &auth):
		return refusal(550, 5, 7, 1, auth.Reason)
	case errors.As(err, &count):
		return refusal(550, 5, 7, 1, headerCountText(count))
	case errors.Is(err, policy.ErrBadAddress):
		return refusal(553, 5, 1, 3, "Bad recipient address syntax")
	case errors.Is(err, policy.ErrNoSuchMailbox):
		return refusal(550, 5, 1, 1, err.Error())
	case errors.Is(err, policy.ErrRelayDenied):
		return refusal(554, 5, 7, 1, "Relay access denied")
	case errors.Is(err, policy.ErrLocalSendersOnly):
		return refusal(550, 5, 7, 1, err.Error())
	case errors.Is(err, policy.ErrTooManyHops):
		return refusal(554, 5, 4, 6, "Too many hops: mail loop detected")
	case errors.Is(err, delivery.ErrMailboxFull):
		return refusal(552, 5, 2, 2, "Mailbox full: quota exceeded")
	case errors.Is(err, delivery.ErrTooManyRecipients):
		return refusal(452, 4, 5, 3, "Too many recipients")
	case errors.Is(err, delivery.ErrBounceOnly):
		return refusal(550, 5, 7, 1, err.Error())
	case errors.Is(err, store.ErrUnavailable):
		return errStoreUnavailable
	}
	return nil
}

func refusal(code, class, subject, detail int, msg string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{class, subject, detail}, Message: msg}
}

// sendAsReply is 550 5.7.1 naming the address.
func sendAsReply(e *policy.SendAsError) *gosmtp.SMTPError {
	msg := "Sender address not allowed"
	if e.Address != "" {
		msg = fmt.Sprintf("Not allowed to send as <%s>", e.Address)
	}
	return refusal(550, 5, 7, 1, msg)
}

func headerCountText(e *delivery.HeaderCountError) string {
	rule := "exactly one is required"
	if e.Field != "From" {
		rule = "at most one is allowed"
	}
	return fmt.Sprintf("Message has %d %s: header fields; %s", e.Count, e.Field, rule)
}
