package main

import (
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"
	"strings"
	"time"
)

// The search corpus: messages that differ in subject, sender and text, in
// the encodings and charsets real mail uses, with needles in a known share
// of them so a SEARCH has a known number of hits. Message i is the same
// in every run, so two servers (or two commits) search the same folder.

// hitEvery makes one message in hitEvery carry the needles: 1,000 hits in
// 100,000 messages.
const hitEvery = 100

// The needles the search scenario looks for; each occurs only in the
// messages with i%hitEvery == hitAt.
const (
	hitAt         = 7
	needleSubject = "kontoauszug"
	needleFrom    = "revisor"
	needleHeader  = "billing-escalation" // in X-Department
	needleText    = "zanzibar"
)

var (
	subjectWords = strings.Fields(`meeting invoice order delivery question update report
		contract offer payment reminder ticket support request account shipment schedule
		review agenda budget proposal feedback complaint refund warranty renewal`)
	firstNames = strings.Fields(`anna bernd clara david emma felix greta hans ida jonas
		karin lukas maria nils olga paul rita sven tina ulf vera walter`)
	domains   = strings.Fields(`example.com example.net example.org contoso.test fabrikam.test`)
	bodyWords = strings.Fields(`the customer asked about the status of the order and we
		replied that the shipment left the warehouse on monday please find attached the
		documents for your records our team will get back to you within two working days
		thank you for your patience kind regards`)
)

// corpusMessage returns message i of the corpus, about size bytes, to to.
func corpusMessage(i int, to string, size int) []byte {
	hit := i%hitEvery == hitAt
	word := func(list []string, k int) string { return list[(i*7+k*13+i/len(list))%len(list)] }
	subject := fmt.Sprintf("%s %s #%d", word(subjectWords, 1), word(subjectWords, 2), i)
	from := fmt.Sprintf("%s %s <%s.%d@%s>", strings.ToUpper(word(firstNames, 3)[:1])+word(firstNames, 3)[1:],
		word(firstNames, 4), word(firstNames, 5), i%997, word(domains, 6))
	if hit {
		subject = "Ihr " + strings.ToUpper(needleSubject[:1]) + needleSubject[1:] + " " + subject
		from = fmt.Sprintf("Der %s <%s.%d@%s>", strings.ToUpper(needleFrom[:1])+needleFrom[1:], needleFrom, i, word(domains, 6))
	}
	var b strings.Builder
	b.WriteString("From: " + from + "\r\n")
	fmt.Fprintf(&b, "To: <%s>\r\n", to)
	switch i % 7 {
	case 2: // an encoded word, as non-ASCII subjects come
		fmt.Fprintf(&b, "Subject: =?utf-8?B?%s?=\r\n", base64.StdEncoding.EncodeToString([]byte("Grüße: "+subject)))
	case 4:
		fmt.Fprintf(&b, "Subject: =?iso-8859-1?Q?Gr=FC=DFe:?= %s\r\n", subject)
	default:
		b.WriteString("Subject: " + subject + "\r\n")
	}
	date := time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Minute)
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <corpus-%d@mailbench.invalid>\r\nMIME-Version: 1.0\r\n", date.Format(time.RFC1123Z), i)
	dept := word(subjectWords, 8)
	if hit {
		dept = needleHeader
	}
	fmt.Fprintf(&b, "X-Department: %s\r\n", dept)
	text := corpusText(i, size-b.Len()-200, hit)
	switch i % 10 {
	case 3:
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString([]byte(text))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	case 5, 6:
		// Latin-1 text, quoted-printable: ü is =FC, and soft line breaks
		// split words across lines.
		b.WriteString("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		var qp strings.Builder
		w := quotedprintable.NewWriter(&qp)
		w.Write(latin1(strings.ReplaceAll(text, "ue", "ü")))
		w.Close()
		b.WriteString(strings.ReplaceAll(qp.String(), "\n", "\r\n"))
	default:
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
		b.WriteString(text)
	}
	return []byte(b.String())
}

// corpusText is about n bytes of text in lines of at most 72 characters,
// with the text needle in hits.
func corpusText(i, n int, hit bool) string {
	var b, line strings.Builder
	for k := 0; b.Len()+line.Len() < n; k++ {
		w := bodyWords[(i*31+k*17+k/len(bodyWords))%len(bodyWords)]
		if hit && k == 40 {
			w = strings.ToUpper(needleText[:1]) + needleText[1:]
		}
		if line.Len()+len(w) > 72 {
			b.WriteString(line.String() + "\r\n")
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
	}
	b.WriteString(line.String() + "\r\n")
	return b.String()
}

// latin1 encodes a string of Latin-1 characters as ISO-8859-1.
func latin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return out
}
