package delivery

import (
	"bufio"
	"bytes"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"postkasse.dev/postkasse/policy"
)

// header is a message's header, parsed once per message: the fields, and
// the facts routing looks at.
type header struct {
	fields textproto.Header
	facts  policy.Header
}

func parseHeader(body []byte) header {
	fields := readHeader(body)
	return header{fields: fields, facts: headerFacts(fields)}
}

// readHeader parses a message's header. A header that cannot be parsed
// yields an empty one: the message is still delivered as received.
func readHeader(body []byte) textproto.Header {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if err != nil {
		return textproto.Header{}
	}
	return h
}

// headerFacts extracts what the routing policy looks at.
func headerFacts(h textproto.Header) policy.Header {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	facts := policy.Header{
		From:          addressList(mh, "From"),
		MessageID:     strings.TrimSpace(h.Get("Message-Id")),
		References:    strings.TrimSpace(h.Get("References")),
		AutoSubmitted: strings.TrimSpace(h.Get("Auto-Submitted")),
		Precedence:    strings.TrimSpace(h.Get("Precedence")),
		ListID:        strings.TrimSpace(h.Get("List-Id")),
		ReceivedCount: len(h.Values("Received")),
	}
	if subject, err := mh.Subject(); err == nil {
		facts.Subject = subject
	} else {
		facts.Subject = h.Get("Subject")
	}
	for _, v := range h.Values("Delivered-To") {
		facts.DeliveredTo = append(facts.DeliveredTo, strings.ToLower(strings.TrimSpace(v)))
	}
	return facts
}

// addressList returns the addresses of a header field, lower-cased; a field
// that does not parse yields its raw trimmed value, so checks still see it.
func addressList(mh mail.Header, key string) []string {
	addrs, err := mh.AddressList(key)
	if err != nil {
		if raw := strings.TrimSpace(mh.Get(key)); raw != "" {
			return []string{strings.ToLower(raw)}
		}
		return nil
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, strings.ToLower(a.Address))
	}
	return out
}
