// Package srs rewrites envelope senders with the Sender Rewriting Scheme,
// in the SRS0/SRS1 format of libsrs2 (as used by postsrsd and others), so
// that forwarded mail passes SPF at the next hop and bounces find their way
// back through us to the original sender.
//
//	SRS0=HHHHHHHHHH=TT=orig-domain=orig-local@our-domain
//
// HHHHHHHHHH is the first ten characters (50 bits) of the base32 HMAC-SHA1,
// under a secret, of TT, orig-domain and orig-local in lower case; TT is
// the day (days since the epoch, modulo 1024) in two base32 characters.
// The hash is compared exactly, in constant time: at 50 bits, guessing it
// is out of reach (libsrs2's four base64 characters, 24 bits, compared
// without case, were found by brute force within a minute), and a mailer
// that changes its case breaks the address, as it would any other. Addresses
// are honoured for 21 days; as in every implementation of the scheme, the
// day wraps after 1024 days, so an address is valid again for 21 days each
// time its day comes round. Rewritten local parts may exceed the 64
// characters of RFC 5321, as SRS addresses commonly do.
//
// The package is pure: no I/O, no clock of its own. It must not import any
// other postkasse package.
package srs

import (
	"crypto/hmac"
	"crypto/sha1"
	encbase32 "encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of Reverse, for callers to test with errors.Is.
var (
	// ErrNotSRS means the address is not an SRS address, or a malformed one.
	ErrNotSRS = errors.New("srs: not an SRS address")
	// ErrBadHash means the hash does not match: not made by us, or forged.
	ErrBadHash = errors.New("srs: hash does not match")
	// ErrExpired means the address is older than MaxAgeDays.
	ErrExpired = errors.New("srs: address expired")
)

const (
	// MaxAgeDays is how long a rewritten address is honoured.
	MaxAgeDays = 21

	hashLen   = 10      // base32 characters: 50 bits
	timeSlots = 1 << 10 // two base32 characters
	day       = 24 * 60 * 60
	base32    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	// separators may follow the SRS0/SRS1 tag; inside, fields are
	// separated by '='.
	separators = "=+-"
)

// Rewriter rewrites senders into addresses at one domain. It is immutable
// and safe for concurrent use.
type Rewriter struct {
	secret []byte
	domain string
}

// New returns a Rewriter for domain (the domain bounces come back to) with
// an HMAC secret. The secret must be long, random and kept: with another
// secret, addresses already handed out no longer reverse.
func New(secret []byte, domain string) *Rewriter {
	return &Rewriter{secret: append([]byte(nil), secret...), domain: strings.ToLower(strings.TrimSpace(domain))}
}

// Forward rewrites an envelope sender for forwarding. The null sender stays
// null. An SRS address of our own domain is returned as it is: it already
// leads back to us. Another host's SRS0 address becomes SRS1, which names
// that host and its SRS0 local part, as libsrs2 does, so the address does
// not grow with each hop; another host's SRS1 keeps its original host.
func (r *Rewriter) Forward(sender string, now time.Time) (string, error) {
	sender = strings.TrimSpace(sender)
	if sender == "" {
		return "", nil
	}
	local, host, ok := split(sender)
	if !ok || !validHost(host) {
		return "", fmt.Errorf("srs: cannot rewrite sender %q: no valid domain", sender)
	}
	if tag, ok := srsTag(local); ok {
		if strings.EqualFold(host, r.domain) {
			return sender, nil
		}
		if tag == "SRS0" {
			return r.srs1(host, local[len(tag):]), nil
		}
		if _, srsHost, srsUser, ok := parseSRS1(local); ok {
			return r.srs1(srsHost, srsUser), nil
		}
		// A malformed SRS1 is wrapped like any other address.
	}
	stamp := timestamp(now)
	hash := r.hash(stamp, host, local)
	return "SRS0=" + hash + "=" + stamp + "=" + host + "=" + local + "@" + r.domain, nil
}

// srs1 writes SRS1=HHHH=host=user@domain, where user is an SRS0 local part
// without its tag (it starts with its separator).
func (r *Rewriter) srs1(host, user string) string {
	return "SRS1=" + r.hash(host, user) + "=" + host + "=" + user + "@" + r.domain
}

// Reverse returns the address an SRS address stands for: the original
// sender for SRS0, the previous hop's SRS0 address for SRS1. The hash is
// compared exactly, case included; SRS0 addresses older than MaxAgeDays
// are refused with ErrExpired. Addresses of the old four-character form
// are refused with ErrBadHash.
func (r *Rewriter) Reverse(addr string, now time.Time) (string, error) {
	local, _, ok := split(strings.TrimSpace(addr))
	if !ok {
		return "", ErrNotSRS
	}
	tag, ok := srsTag(local)
	if !ok {
		return "", ErrNotSRS
	}
	if tag == "SRS1" {
		hash, host, user, ok := parseSRS1(local)
		if !ok {
			return "", fmt.Errorf("%w: malformed SRS1 address", ErrNotSRS)
		}
		if !r.hashMatches(hash, host, user) {
			return "", ErrBadHash
		}
		return "SRS0" + user + "@" + host, nil
	}
	hash, stamp, host, user, ok := parseSRS0(local)
	if !ok {
		return "", fmt.Errorf("%w: malformed SRS0 address", ErrNotSRS)
	}
	if !r.hashMatches(hash, stamp, host, user) {
		return "", ErrBadHash
	}
	if err := checkTimestamp(stamp, now); err != nil {
		return "", err
	}
	return user + "@" + host, nil
}

// IsSRS reports whether addr has the form of an SRS0 or SRS1 address (of
// any domain). It does not check the hash.
func IsSRS(addr string) bool {
	local, _, ok := split(strings.TrimSpace(addr))
	if !ok {
		return false
	}
	_, ok = srsTag(local)
	return ok
}

// split splits an address at its last '@'.
func split(addr string) (local, host string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// validHost accepts what can stand between '=' separators and be read
// back: no '=', no spaces or control characters.
func validHost(host string) bool {
	for _, r := range host {
		if r <= ' ' || r == 0x7f || r == '=' {
			return false
		}
	}
	return true
}

// srsTag returns "SRS0" or "SRS1" when local starts with one of them,
// in any case, and a separator.
func srsTag(local string) (string, bool) {
	if len(local) < 5 || !strings.ContainsRune(separators, rune(local[4])) {
		return "", false
	}
	switch tag := strings.ToUpper(local[:4]); tag {
	case "SRS0", "SRS1":
		return tag, true
	}
	return "", false
}

// parseSRS0 splits SRS0=HHHH=TT=host=user (user may contain '=').
func parseSRS0(local string) (hash, stamp, host, user string, ok bool) {
	rest := local[5:]
	hash, rest, ok1 := strings.Cut(rest, "=")
	stamp, rest, ok2 := strings.Cut(rest, "=")
	host, user, ok3 := strings.Cut(rest, "=")
	ok = ok1 && ok2 && ok3 && hash != "" && len(stamp) == 2 && host != "" && validHost(host) && user != ""
	return hash, stamp, host, user, ok
}

// parseSRS1 splits SRS1=HHHH=host=user, where user is the previous hop's
// SRS0 local part without its tag, so it starts with a separator.
func parseSRS1(local string) (hash, host, user string, ok bool) {
	rest := local[5:]
	hash, rest, ok1 := strings.Cut(rest, "=")
	host, user, ok2 := strings.Cut(rest, "=")
	ok = ok1 && ok2 && hash != "" && host != "" && validHost(host) && user != "" &&
		strings.ContainsRune(separators, rune(user[0]))
	return hash, host, user, ok
}

// hash is the first hashLen characters of the base32 HMAC-SHA1 of the
// parts in lower case, so the case of the other fields does not matter.
func (r *Rewriter) hash(parts ...string) string {
	mac := hmac.New(sha1.New, r.secret)
	for _, p := range parts {
		mac.Write([]byte(strings.ToLower(p)))
	}
	// The standard alphabet is the timestamps' (RFC 4648: A-Z, 2-7).
	return encbase32.StdEncoding.EncodeToString(mac.Sum(nil))[:hashLen]
}

// hashMatches compares exactly and in constant time (hmac.Equal also
// takes no shortcut on a length that differs only in its result).
func (r *Rewriter) hashMatches(got string, parts ...string) bool {
	return hmac.Equal([]byte(got), []byte(r.hash(parts...)))
}

// timestamp is the day of now, modulo timeSlots, in two base32 characters.
func timestamp(now time.Time) string {
	slot := daySlot(now)
	return string([]byte{base32[slot>>5&31], base32[slot&31]})
}

func daySlot(now time.Time) int64 {
	return ((now.Unix()/day)%timeSlots + timeSlots) % timeSlots
}

// checkTimestamp refuses a stamp more than MaxAgeDays old. Stamps are
// modulo timeSlots days, so one from the "future" is from the last cycle.
func checkTimestamp(stamp string, now time.Time) error {
	stamp = strings.ToUpper(stamp)
	hi, lo := strings.IndexByte(base32, stamp[0]), strings.IndexByte(base32, stamp[1])
	if hi < 0 || lo < 0 {
		return fmt.Errorf("%w: bad timestamp", ErrNotSRS)
	}
	then := int64(hi<<5 | lo)
	current := daySlot(now)
	if current < then {
		current += timeSlots
	}
	if current-then > MaxAgeDays {
		return ErrExpired
	}
	return nil
}
