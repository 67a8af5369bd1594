package queue

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// DSN actions (RFC 3464 section 2.3.3) the queue reports.
const (
	actionFailed  = "failed"
	actionDelayed = "delayed"
)

// maxReturnedHeader bounds the original header returned in a DSN.
const maxReturnedHeader = 64 << 10

// dsnReport is everything one delivery status notification says.
type dsnReport struct {
	Hostname   string // reporting MTA
	Sender     string // the original envelope sender, who gets the report
	QueueID    uint64
	Arrival    time.Time
	Date       time.Time
	RetryUntil time.Time // for delayed reports
	Action     string    // actionFailed or actionDelayed
	Recipients []dsnRecipient
	Header     []byte // the original message's header
}

// dsnRecipient is one recipient's line in a report.
type dsnRecipient struct {
	Address string
	Status  string // enhanced status code
	Reply   string // "550 5.1.1 ..." from a server, or a local explanation
	Note    string // optional words for the human-readable part
}

// buildDSN writes rep as an RFC 3464 multipart/report: a human-readable
// text, the machine-readable message/delivery-status, and the original
// header as text/rfc822-headers.
func buildDSN(rep dsnReport) ([]byte, error) {
	h := dsnHeader(rep)
	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("DSN: %w", err)
	}
	text := humanText(rep)
	if err := writePart(w, "text/plain", map[string]string{"charset": "utf-8"}, qpIfNeeded(text), []byte(text)); err != nil {
		return nil, err
	}
	var status bytes.Buffer
	if err := writeStatus(&status, rep); err != nil {
		return nil, err
	}
	if err := writePart(w, "message/delivery-status", nil, eightBitIfNeeded(status.Bytes()), status.Bytes()); err != nil {
		return nil, err
	}
	if len(rep.Header) > 0 {
		if err := writePart(w, "text/rfc822-headers", nil, eightBitIfNeeded(rep.Header), rep.Header); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("DSN: %w", err)
	}
	return buf.Bytes(), nil
}

// dsnHeader is the report's own header: from MAILER-DAEMON, to the sender,
// marked as an automatic reply to the original message.
func dsnHeader(rep dsnReport) mail.Header {
	var h mail.Header
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})
	h.Set("Auto-Submitted", "auto-replied")
	if id := originalMessageID(rep.Header); id != "" {
		h.SetMsgIDList("References", []string{id})
		h.SetMsgIDList("In-Reply-To", []string{id})
	}
	// GenerateMessageIDWithHostname only fails when the system has no
	// randomness; a report without Message-ID is still a report.
	_ = h.GenerateMessageIDWithHostname(rep.Hostname)
	h.SetDate(rep.Date)
	if rep.Action == actionDelayed {
		h.SetSubject("Delayed Mail (still being retried)")
	} else {
		h.SetSubject("Undelivered Mail Returned to Sender")
	}
	h.SetAddressList("To", []*mail.Address{{Address: rep.Sender}})
	h.SetAddressList("From", []*mail.Address{{Name: "Mail Delivery System", Address: "MAILER-DAEMON@" + rep.Hostname}})
	return h
}

func originalMessageID(header []byte) string {
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(header, '\r', '\n'))))
	if err != nil {
		return ""
	}
	h := mail.Header{Header: message.Header{Header: th}}
	id, err := h.MessageID()
	if err != nil {
		return ""
	}
	return id
}

func writePart(w *message.Writer, contentType string, params map[string]string, encoding string, body []byte) error {
	var h message.Header
	if encoding != "" {
		h.Set("Content-Transfer-Encoding", encoding)
	}
	h.SetContentType(contentType, params)
	pw, err := w.CreatePart(h)
	if err != nil {
		return fmt.Errorf("DSN %s part: %w", contentType, err)
	}
	if _, err := pw.Write(body); err != nil {
		return fmt.Errorf("DSN %s part: %w", contentType, err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("DSN %s part: %w", contentType, err)
	}
	return nil
}

// humanText is the part people read.
func humanText(rep dsnReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\n", rep.Hostname)
	if rep.Action == actionDelayed {
		fmt.Fprintf(&b, "Your message has not yet been delivered to the recipients below.\r\n"+
			"The mail system will keep trying until %s;\r\n"+
			"you do not need to send it again.\r\n\r\n", rep.RetryUntil.UTC().Format(time.RFC1123Z))
	} else {
		b.WriteString("Your message could not be delivered to the recipients below.\r\n" +
			"The header of your message is attached.\r\n\r\n")
	}
	for _, rc := range rep.Recipients {
		fmt.Fprintf(&b, "<%s>:\r\n    %s\r\n", oneLine(rc.Address), oneLine(rc.Reply))
		if rc.Note != "" {
			fmt.Fprintf(&b, "    %s\r\n", oneLine(rc.Note))
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// writeStatus writes the message/delivery-status body: the per-message
// fields, then one block per recipient, each block ending in a blank line.
func writeStatus(w io.Writer, rep dsnReport) error {
	date := func(t time.Time) string { return t.Format(time.RFC1123Z) }
	fields := [][2]string{
		{"Reporting-MTA", "dns; " + rep.Hostname},
		{"X-Postkasse-Queue-ID", fmt.Sprint(rep.QueueID)},
		{"Arrival-Date", date(rep.Arrival)},
	}
	if err := writeFields(w, fields); err != nil {
		return err
	}
	for _, rc := range rep.Recipients {
		fields := [][2]string{
			{"Final-Recipient", "rfc822; " + rc.Address},
			{"Action", rep.Action},
			{"Status", rc.Status},
			{"Diagnostic-Code", diagnostic(rc.Reply)},
			{"Last-Attempt-Date", date(rep.Date)},
		}
		if rep.Action == actionDelayed && !rep.RetryUntil.IsZero() {
			fields = append(fields, [2]string{"Will-Retry-Until", date(rep.RetryUntil)})
		}
		if err := writeFields(w, fields); err != nil {
			return err
		}
	}
	return nil
}

// diagnostic is a Diagnostic-Code value: "smtp; <reply>" for a server's
// reply, our own diagnostic type for local explanations.
func diagnostic(reply string) string {
	if _, _, ok := parseReply(reply); ok {
		return "smtp; " + oneLine(reply)
	}
	return "X-Postkasse; " + oneLine(reply)
}

// writeFields writes one block of DSN fields through go-message's header
// writer, keeping the field names' spelling (Add would canonicalize
// "Reporting-MTA" to "Reporting-Mta"). Values are single lines of bounded
// length (see oneLine), well within the line limit.
func writeFields(w io.Writer, fields [][2]string) error {
	var h textproto.Header
	// A textproto.Header writes its fields last-added first.
	for i := len(fields) - 1; i >= 0; i-- {
		h.AddRaw([]byte(fields[i][0] + ": " + oneLine(fields[i][1]) + "\r\n"))
	}
	if err := textproto.WriteHeader(w, h); err != nil {
		return fmt.Errorf("DSN status: %w", err)
	}
	return nil
}

// headerOf returns the header of msg, without the blank line that ends it,
// cut at a line boundary when it is very long.
func headerOf(msg []byte) []byte {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil // no header at all
	}
	end := len(msg)
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		end = i + 2
	}
	if end > maxReturnedHeader {
		end = bytes.LastIndex(msg[:maxReturnedHeader], []byte("\r\n"))
		if end < 0 {
			return nil // one giant line is no header worth returning
		}
		end += 2
	}
	return bytes.Clone(msg[:end])
}

func qpIfNeeded(s string) string {
	if isASCII([]byte(s)) {
		return ""
	}
	return "quoted-printable"
}

func eightBitIfNeeded(b []byte) string {
	if isASCII(b) {
		return ""
	}
	return "8bit"
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
