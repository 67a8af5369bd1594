package mailauth

import (
	"bytes"
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// headerName is the field this package writes and strips.
const headerName = "Authentication-Results"

// Header returns the Authentication-Results field (RFC 8601) of the
// report, CRLF-terminated, to be put at the top of the message: spf=,
// dkim= once per signature (or dkim=none), dmarc= (none without a policy).
// A check that was switched off is left out.
func (r *Report) Header() string {
	var results []authres.Result
	if r.SPF.Result != NotChecked {
		s := &authres.SPFResult{Value: authres.ResultValue(r.SPF.Result), Reason: clean(r.SPF.Reason)}
		if r.SPF.Helo {
			s.Helo = clean(r.SPF.Domain)
		} else {
			s.From = clean(r.SPF.Domain)
		}
		results = append(results, s)
	}
	if r.DKIM != nil && len(r.DKIM) == 0 {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range r.DKIM {
		results = append(results, &authres.DKIMResult{Value: authres.ResultValue(d.Result), Reason: clean(d.Reason), Domain: clean(d.Domain), Identifier: clean(d.Identifier)})
	}
	if r.DMARC.Result != NotChecked {
		results = append(results, &authres.DMARCResult{Value: authres.ResultValue(r.DMARC.Result), From: clean(r.DMARC.Domain)})
	}
	if len(results) == 0 {
		return headerName + ": " + authres.Format(r.authservID, nil) + "\r\n"
	}
	value := authres.Format(r.authservID, results)
	// Fold after each result so the line stays short (RFC 5322 section 2.2.3).
	return headerName + ": " + strings.ReplaceAll(value, "; ", ";\r\n\t") + "\r\n"
}

// maxText bounds a reason or name in the header.
const maxText = 200

// clean makes text from the message or the network safe inside the
// header: printable ASCII only (a CR or LF would end the field and let a
// sender append fields of its own), and not too long.
func clean(s string) string {
	if len(s) <= maxText && !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxText {
			break
		}
		if r < ' ' || r > '~' {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Stamp returns msg as it is stored and passed on: the report's
// Authentication-Results field on top, and every field with the same
// authserv-id that came with the message removed.
func (r *Report) Stamp(msg []byte) []byte {
	h := r.Header()
	stripped := StripResults(msg, r.authservID)
	out := make([]byte, 0, len(h)+len(stripped))
	return append(append(out, h...), stripped...)
}

// StripResults returns msg without the Authentication-Results fields whose
// authserv-id is authservID, so nobody outside can forge this server's
// results (RFC 8601 section 5). Every other byte stays as it was: fields
// that DKIM signatures cover must not change, or forwarded mail would fail
// DKIM at the next receiver.
//
// It walks the header lines itself rather than through a header parser:
// a parser stops at the first malformed line, and a forged field after
// one must go too. msg is returned unchanged (not copied) when there is
// nothing to remove.
func StripResults(msg []byte, authservID string) []byte {
	var out []byte
	start, dropped := 0, false
	for start < len(msg) {
		end := fieldEnd(msg, start)
		if end == start {
			break // the empty line that ends the header
		}
		if isOwnResults(msg[start:end], authservID) {
			if out == nil {
				out = append(make([]byte, 0, len(msg)), msg[:start]...)
			}
			dropped = true
		} else if out != nil {
			out = append(out, msg[start:end]...)
		}
		start = end
	}
	if !dropped {
		return msg
	}
	return append(out, msg[start:]...)
}

// fieldEnd returns where the header field starting at start ends: after
// its last continuation line. At the empty line that ends the header it
// returns start.
func fieldEnd(msg []byte, start int) int {
	i := start
	for {
		nl := bytes.IndexByte(msg[i:], '\n')
		if nl < 0 {
			return len(msg)
		}
		line := msg[i : i+nl+1]
		if i == start && len(bytes.TrimRight(line, "\r\n")) == 0 {
			return start
		}
		i += nl + 1
		if i >= len(msg) || (msg[i] != ' ' && msg[i] != '\t') {
			return i
		}
	}
}

// isOwnResults tells whether the raw field is an Authentication-Results
// field with authservID as its authserv-id.
func isOwnResults(field []byte, authservID string) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte(headerName)) {
		return false
	}
	return strings.EqualFold(AuthservID(string(value)), authservID)
}

// AuthservID returns the authserv-id of an Authentication-Results value:
// its first word, after unfolding and skipping comments, without a
// trailing version. It is lenient on purpose: what a mail client might
// show as this server's results must be recognised.
func AuthservID(value string) string {
	var b strings.Builder
	depth := 0
	for _, r := range value {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth > 0:
		case r == ';':
			return strings.TrimSuffix(firstWord(b.String()), ".")
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimSuffix(firstWord(b.String()), ".")
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
