package delivery

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHeaderFacts(t *testing.T) {
	t.Parallel()
	body := "Received: a\r\nReceived: b\r\nFrom: \"Zoe\" <ZOE@Example.org>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"Delivered-To: Anna@Contoso.test\r\nAuto-Submitted: auto-replied\r\nPrecedence: bulk\r\nList-Id: <l.example.org>\r\n" +
		"Message-ID: <m@x>\r\nReferences: <a@x> <b@x>\r\n\r\nbody\r\n"
	f := headerFacts(readHeader([]byte(body)))
	if !slices.Equal(f.From, []string{"zoe@example.org"}) || f.Subject != "Grüße" || f.ReceivedCount != 2 ||
		!slices.Equal(f.DeliveredTo, []string{"anna@contoso.test"}) || f.AutoSubmitted != "auto-replied" ||
		f.Precedence != "bulk" || f.ListID != "<l.example.org>" || f.MessageID != "<m@x>" || f.References != "<a@x> <b@x>" {
		t.Fatalf("facts %+v", f)
	}
	// A header that does not parse yields no facts, not a failure.
	if f := headerFacts(readHeader([]byte("no colon here\r\n\r\n"))); f.ReceivedCount != 0 || len(f.From) != 0 {
		t.Fatalf("facts of garbage %+v", f)
	}
}

func TestReceivedHeader(t *testing.T) {
	t.Parallel()
	a := &Agent{opts: Options{Hostname: "mail.contoso.test"}}
	m := &Message{ID: "ABC", Helo: "evil\r\nInjected: yes", RemoteAddr: "192.0.2.7:4567", Recipients: []string{"anna@contoso.test"}, Body: []byte("Subject: x\r\n\r\n")}
	out := string(a.withReceived(m, time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)))
	if strings.Contains(out, "\r\nInjected") {
		t.Fatalf("HELO injected a header:\n%s", out)
	}
	if !strings.HasPrefix(out, "Received: from evilInjected: yes ([192.0.2.7])\r\n\tby mail.contoso.test (postkasse) with ESMTP id ABC\r\n\tfor <anna@contoso.test>; ") {
		t.Fatalf("Received:\n%s", out)
	}
}

// FuzzHeaderFacts feeds arbitrary messages to the header handling of the
// delivery path: no input may panic it, and the Received line it adds must
// stay one header field.
func FuzzHeaderFacts(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: x\r\n\r\nbody"), "helo.example")
	f.Add([]byte("Received: x\r\n\tcontinued\r\nDelivered-To: a@b\r\n\r\n"), "x\r\ny")
	f.Fuzz(func(t *testing.T, body []byte, helo string) {
		headerFacts(readHeader(body))
		a := &Agent{opts: Options{Hostname: "mail.contoso.test"}}
		out := a.withReceived(&Message{ID: "X", Helo: helo, RemoteAddr: helo, Recipients: []string{helo}, Body: body}, time.Unix(0, 0))
		received := string(out[:len(out)-len(body)])
		lines := strings.Split(strings.TrimSuffix(received, "\r\n"), "\r\n")
		for i, l := range lines {
			if i > 0 && !strings.HasPrefix(l, "\t") {
				t.Fatalf("Received header broke into a new field: %q", received)
			}
		}
	})
}
