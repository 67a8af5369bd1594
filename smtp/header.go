package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

func readHeader(body []byte) textproto.Header {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if err != nil {
		return textproto.Header{}
	}
	return h
}

// addresses returns the addresses of a header field, lower case. A field
// that does not parse is returned raw, so it fails the send-as check
// rather than slipping past it.
func addresses(h textproto.Header, key string) []string {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	list, err := mh.AddressList(key)
	if err != nil {
		if raw := strings.TrimSpace(h.Get(key)); raw != "" {
			return []string{strings.ToLower(raw)}
		}
		return nil
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, strings.ToLower(a.Address))
	}
	return out
}

// completeHeader adds the Message-ID and Date a submitted message lacks
// (RFC 6409 §8), as header lines before the rest.
func completeHeader(body []byte, h textproto.Header, hostname string) []byte {
	var extra []byte
	if !h.Has("Date") {
		extra = append(extra, "Date: "+time.Now().Format(time.RFC1123Z)+"\r\n"...)
	}
	if !h.Has("Message-Id") {
		mh := mail.Header{Header: gomessage.Header{Header: textproto.Header{}}}
		if err := mh.GenerateMessageIDWithHostname(hostname); err == nil {
			extra = append(extra, "Message-ID: "+mh.Get("Message-Id")+"\r\n"...)
		}
	}
	if len(extra) == 0 {
		return body
	}
	return append(extra, body...)
}
