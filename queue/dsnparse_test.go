package queue

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message"
)

// parsedDSN is a DSN taken apart with go-message.
type parsedDSN struct {
	header  message.Header
	params  map[string]string // of the top Content-Type
	text    string            // text/plain, decoded
	status  string            // message/delivery-status
	headers string            // text/rfc822-headers
}

func parseDSN(t testing.TB, raw []byte) parsedDSN {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read DSN: %v\n%s", err, raw)
	}
	var d parsedDSN
	d.header = e.Header
	ct, params, err := e.Header.ContentType()
	if err != nil || ct != "multipart/report" {
		t.Fatalf("DSN Content-Type %q (%v)", ct, err)
	}
	d.params = params
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := p.Header.ContentType()
		switch pt {
		case "text/plain":
			d.text = string(body)
		case "message/delivery-status":
			d.status = string(body)
		case "text/rfc822-headers":
			d.headers = string(body)
		default:
			t.Fatalf("unexpected DSN part %q", pt)
		}
	}
	return d
}

// mustContain fails unless s contains every want.
func mustContain(t testing.TB, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
