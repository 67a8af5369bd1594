package delivery

import (
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// checkSubmission applies SPEC §5 to a submitted message's header: exactly
// one From: and at most one Sender:, both addresses the user may send as
// (or on behalf of); the newest Resent-From:/Resent-Sender: pair, when
// present, under the same rule. Older resent blocks were added by whoever
// resent the message before, and are not the user's claim.
func (t *Transaction) checkSubmission(h header) error {
	if n := len(h.fields.Values("From")); n != 1 {
		return &HeaderCountError{Field: "From", Count: n}
	}
	if n := len(h.fields.Values("Sender")); n > 1 {
		return &HeaderCountError{Field: "Sender", Count: n}
	}
	mh := mail.Header{Header: gomessage.Header{Header: h.fields}}
	user := t.facts.Authenticated
	if err := t.dir.CheckSubmission(user, t.from, addressList(mh, "From"), first(addressList(mh, "Sender"))); err != nil {
		return err
	}
	resentFrom := newestAddresses(h.fields, "Resent-From")
	resentSender := first(newestAddresses(h.fields, "Resent-Sender"))
	if len(resentFrom) == 0 && resentSender == "" {
		return nil
	}
	return t.dir.CheckSubmission(user, t.from, resentFrom, resentSender)
}

// newestAddresses returns the addresses of the first (newest) field of
// key; a field that does not parse yields its raw value, which fails the
// send-as check rather than slipping past it.
func newestAddresses(h textproto.Header, key string) []string {
	values := h.Values(key) // in the order of the message: newest first
	if len(values) == 0 {
		return nil
	}
	one := textproto.Header{}
	one.Add(key, values[0])
	return addressList(mail.Header{Header: gomessage.Header{Header: one}}, key)
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

// completeHeader adds the Message-ID and Date a submitted message lacks
// (RFC 6409 §8), as header lines before the rest; the parsed header learns
// the new Message-ID.
func (a *Agent) completeHeader(body []byte, h header) ([]byte, header) {
	var extra []byte
	if !h.fields.Has("Date") {
		extra = append(extra, "Date: "+a.opts.Now().Format(time.RFC1123Z)+"\r\n"...)
	}
	if !h.fields.Has("Message-Id") {
		mh := mail.Header{Header: gomessage.Header{Header: textproto.Header{}}}
		if err := mh.GenerateMessageIDWithHostname(a.opts.Hostname); err == nil {
			id := mh.Get("Message-Id")
			extra = append(extra, "Message-ID: "+id+"\r\n"...)
			h.facts.MessageID = id
		}
	}
	if len(extra) == 0 {
		return body, h
	}
	return append(extra, body...), h
}
