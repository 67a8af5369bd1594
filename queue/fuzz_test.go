package queue

import (
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseReply feeds arbitrary stored replies and EHLO texts to the
// parsers that read what remote servers said.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"550 5.1.1 No such user", "451 Try later", "", "999 9.9.9", "2.0.0 OK", "x\nSTARTTLS\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if code, status, ok := parseReply(s); ok {
			if code < 200 || code > 599 || !validStatus(status) || status[0] != byte('0'+code/100) {
				t.Fatalf("parseReply(%q) = %d %q", s, code, status)
			}
		}
		line := oneLine(s)
		for _, r := range line {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("oneLine left a control character in %q", line)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(line) {
			t.Fatalf("oneLine broke UTF-8: %q", line)
		}
		ext := parseEHLO(s)
		_ = ext.has("STARTTLS")
		_ = ext.auth("PLAIN")
		_ = successOutcome(s)
	})
}

// FuzzDSN builds DSNs from arbitrary original messages, addresses and
// replies: the result must always be a well-formed report.
func FuzzDSN(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: x\r\nMessage-ID: <1@b>\r\n\r\nbody"), "bo@contoso.test", "550 5.1.1 No\r\nsuch user")
	f.Add([]byte("\r\n"), "ü@例え.テスト", "connection refused")
	f.Add([]byte("Subject: =?utf-8?q?caf=C3=A9?=\r\nX: é\r\n\r\n"), "x@y", "")
	f.Add([]byte("--boundary\r\n\r\n"), "a@b", "451 4.3.0 --")
	f.Fuzz(func(t *testing.T, msg []byte, addr, reply string) {
		rep := dsnReport{
			Hostname: "mail.contoso.test", Sender: "anna@contoso.test", QueueID: 7,
			Arrival: time.Unix(0, 0), Date: time.Unix(3600, 0), Action: actionFailed,
			Recipients: []dsnRecipient{{Address: addr, Status: "5.0.0", Reply: reply, Note: reply}},
			Header:     headerOf(msg),
		}
		raw, err := buildDSN(rep)
		if err != nil {
			t.Fatalf("buildDSN: %v", err)
		}
		d := parseDSN(t, raw)
		mustContain(t, "status part", d.status, "Action: failed\r\n", "Status: 5.0.0\r\n")
	})
}
