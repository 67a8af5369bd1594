package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"fmt"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	msgauth "github.com/emersion/go-msgauth/dkim"
)

// Key is the signing key of one domain.
type Key struct {
	Selector string
	Signer   crypto.Signer
}

// signedFields are the header fields a signature covers when the message has
// them: the ones a reader sees or that change how the body is read. Trace
// fields (Received, Return-Path) are left out because relays add them.
var signedFields = []string{
	"From", "Reply-To", "Sender", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding",
}

// Signer signs messages whose From: domain has a key. It is safe for
// concurrent use.
type Signer struct {
	keys map[string]Key // by lower-case domain
}

// NewSigner returns a Signer for keys, indexed by domain. Domains are
// matched case-insensitively.
func NewSigner(keys map[string]Key) *Signer {
	s := &Signer{keys: make(map[string]Key, len(keys))}
	for d, k := range keys {
		s.keys[strings.ToLower(strings.TrimSuffix(d, "."))] = k
	}
	return s
}

// Sign returns msg with a DKIM-Signature field prepended when the domain of
// its From: address has a key (relaxed/relaxed, SHA-256), and msg unchanged
// otherwise (also when its header cannot be parsed: there is then no From
// domain to vouch for). msg must have CRLF line endings. An error means the
// From domain has a key but signing failed; the caller decides whether to
// send the message unsigned.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg)))
	if err != nil {
		// A header we cannot read has no From domain we could vouch for.
		return msg, nil
	}
	domain := fromDomain(mail.Header{Header: message.Header{Header: hdr}})
	key, ok := s.keys[domain]
	if !ok || key.Signer == nil {
		return msg, nil
	}
	opts := &msgauth.SignOptions{
		Domain:                 domain,
		Selector:               key.Selector,
		Signer:                 key.Signer,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauth.CanonicalizationRelaxed,
		HeaderKeys:             presentFields(hdr),
	}
	var out bytes.Buffer
	out.Grow(len(msg) + 512)
	if err := msgauth.Sign(&out, bytes.NewReader(msg), opts); err != nil {
		return nil, fmt.Errorf("dkim: sign for %s: %w", domain, err)
	}
	return out.Bytes(), nil
}

// fromDomain returns the lower-case domain of the first From: address, or ""
// when there is none.
func fromDomain(h mail.Header) string {
	addrs, err := h.AddressList("From")
	if err != nil || len(addrs) == 0 {
		return ""
	}
	at := strings.LastIndexByte(addrs[0].Address, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(addrs[0].Address[at+1:])
}

// presentFields lists signedFields once per occurrence in hdr, so that the
// signature covers every instance (From is always listed: the library
// requires it, and our caller only gets here when there is one).
func presentFields(hdr textproto.Header) []string {
	keys := []string{}
	for _, f := range signedFields {
		n := len(hdr.Values(f))
		if f == "From" && n == 0 {
			n = 1
		}
		for range n {
			keys = append(keys, f)
		}
	}
	return keys
}
