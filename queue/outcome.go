package queue

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
)

// result is what one attempt did for one recipient.
type result uint8

const (
	delivered result = iota + 1
	deferred         // transient: try again later
	failed           // permanent: give up and notify the sender
)

func (r result) String() string {
	switch r {
	case delivered:
		return "delivered"
	case deferred:
		return "deferred"
	case failed:
		return "failed"
	}
	return "unknown"
}

// outcome is the result for one recipient with the reply that explains it:
// a remote SMTP reply (code > 0) or a local explanation (code 0), such as
// "connection refused" or "null MX".
type outcome struct {
	result result
	code   int    // SMTP reply code; 0 when no server replied
	status string // enhanced status code, "5.1.1"
	text   string
}

// reply is the outcome as kept in store.QueuedRecipient.Reply: "550 5.1.1
// text" for remote replies, the bare text for local ones.
func (o outcome) reply() string {
	if o.code == 0 {
		return o.text
	}
	return fmt.Sprintf("%d %s %s", o.code, o.status, o.text)
}

// remote tells whether a server gave this reply.
func (o outcome) remote() bool { return o.code != 0 }

func localOutcome(r result, status, format string, args ...any) outcome {
	return outcome{result: r, status: status, text: oneLine(fmt.Sprintf(format, args...))}
}

// replyOutcome turns a server's reply into an outcome: 2xx delivered, 4xx
// deferred, 5xx failed. Anything else is a protocol error: deferred.
func replyOutcome(code int, enhanced gosmtp.EnhancedCode, text string) outcome {
	o := outcome{code: code, text: oneLine(text)}
	class := code / 100
	switch class {
	case 2:
		o.result = delivered
	case 5:
		o.result = failed
	default:
		o.result, class = deferred, 4
	}
	o.status = fmt.Sprintf("%d.0.0", class)
	if enhanced[0] == class && enhanced[1] >= 0 && enhanced[2] >= 0 {
		o.status = fmt.Sprintf("%d.%d.%d", enhanced[0], enhanced[1], enhanced[2])
	}
	return o
}

// errorOutcome maps an error from the SMTP session to an outcome: the
// server's reply when it gave one, otherwise a deferral with localStatus
// (network errors, timeouts and the like are always worth another try). A
// success reply where another was due, such as 250 to DATA, is a confused
// server, not a delivery.
func errorOutcome(err error, localStatus string) outcome {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) && se.Code/100 != 2 {
		return replyOutcome(se.Code, se.EnhancedCode, se.Message)
	}
	return localOutcome(deferred, localStatus, "%v", err)
}

// parseReply splits a stored reply ("451 4.3.0 text") into its code and
// enhanced status; ok is false for local explanations.
func parseReply(reply string) (code int, status string, ok bool) {
	fields := strings.SplitN(reply, " ", 3)
	if len(fields) < 2 || len(fields[0]) != 3 {
		return 0, "", false
	}
	code, err := strconv.Atoi(fields[0])
	// A 3xx reply is never a recipient's final word and has no enhanced
	// status class (RFC 3463 knows 2, 4 and 5).
	if err != nil || code < 200 || code > 599 || code/100 == 3 {
		return 0, "", false
	}
	if validStatus(fields[1]) && fields[1][0] == fields[0][0] {
		return code, fields[1], true
	}
	return code, fmt.Sprintf("%c.0.0", fields[0][0]), true
}

// validStatus reports whether s is an enhanced status code (RFC 3463).
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 999 || len(p) > 3 {
			return false
		}
	}
	return true
}

// oneLine makes remote text safe to keep in one header field or log line:
// line breaks and other control characters become spaces, and it is cut at
// a sane length.
func oneLine(s string) string {
	const max = 400
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
