package mailfile

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Dovecot names Maildir folders in IMAP's modified UTF-7 (RFC 3501
// §5.1.3): "Entwürfe" is ".Entw&APw-rfe" on disk.

var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

var errMUTF7 = errors.New("mailfile: bad modified UTF-7 name")

// decodeMUTF7 turns a modified UTF-7 name into UTF-8.
func decodeMUTF7(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, '-')
		if j < 0 {
			return "", errMUTF7
		}
		if j == 0 {
			b.WriteByte('&')
			s = s[1:]
			continue
		}
		raw, err := mutf7.DecodeString(s[:j])
		if err != nil || len(raw)%2 != 0 {
			return "", errMUTF7
		}
		units := make([]uint16, len(raw)/2)
		for k := range units {
			units[k] = binary.BigEndian.Uint16(raw[2*k:])
		}
		b.WriteString(string(utf16.Decode(units)))
		s = s[j+1:]
	}
}

// encodeMUTF7 turns a UTF-8 name into modified UTF-7.
func encodeMUTF7(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r >= 0x20 && r <= 0x7e {
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			s = s[size:]
			continue
		}
		end := 0
		for end < len(s) {
			r, n := utf8.DecodeRuneInString(s[end:])
			if r >= 0x20 && r <= 0x7e {
				break
			}
			end += n
		}
		var raw []byte
		for _, u := range utf16.Encode([]rune(s[:end])) {
			raw = binary.BigEndian.AppendUint16(raw, u)
		}
		b.WriteString("&" + mutf7.EncodeToString(raw) + "-")
		s = s[end:]
	}
	return b.String()
}
