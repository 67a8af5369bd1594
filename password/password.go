// Package password hashes and verifies the passwords of postkasse's
// configuration file: bcrypt (what `postkasse passwd` writes) and argon2id
// (what other tools may have produced). It must not import any other
// package of the server.
package password

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Cost is the bcrypt cost of new hashes.
const Cost = 10

// Hash returns a bcrypt hash of password.
func Hash(password string) (string, error) {
	if password == "" {
		return "", fmt.Errorf("password: empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return string(h), nil
}

// IsHash reports whether s is a hash Verify understands, with costs
// within bounds (bcrypt cost at most 16, argon2id at most 1 GiB and 64
// passes), so that a hash cannot make one login run away.
func IsHash(s string) bool {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		return err == nil && cost <= maxBcryptCost
	case strings.HasPrefix(s, "$argon2id$"):
		_, err := parseArgon2(s)
		return err == nil
	}
	return false
}

// cacheSize bounds the remembered verifications.
const cacheSize = 10000

// Verifier checks passwords against hashes. It remembers recent successful
// checks under a keyed digest (never the password), so a client that logs
// in again and again does not pay bcrypt every time. It is safe for
// concurrent use.
type Verifier struct {
	key   [32]byte
	limit int // most remembered verifications

	mu    sync.Mutex
	order *list.List // of [32]byte, oldest first
	known map[[32]byte]*list.Element

	decoyOnce sync.Once
	decoy     string // a hash of a random password, for VerifyUnknown
}

// VerifyUnknown spends the time checking password against a hash of the
// default cost takes, and reports nothing: a login for an address that
// does not exist then takes as long as one with a wrong password, so the
// reply's timing does not tell which addresses exist.
func (v *Verifier) VerifyUnknown(password string) {
	v.decoyOnce.Do(func() {
		var secret [16]byte
		rand.Read(secret[:])
		h, err := bcrypt.GenerateFromPassword([]byte(base64.RawStdEncoding.EncodeToString(secret[:])), Cost)
		if err == nil {
			v.decoy = string(h)
		}
	})
	check(v.decoy, password)
}

// NewVerifier returns a Verifier with an empty cache and a fresh key.
func NewVerifier() *Verifier {
	v := &Verifier{limit: cacheSize, order: list.New(), known: make(map[[32]byte]*list.Element)}
	rand.Read(v.key[:]) // never fails since Go 1.24
	return v
}

// Verify reports whether password matches hash. A hash it does not
// understand matches nothing.
func (v *Verifier) Verify(hash, password string) bool {
	mac := hmac.New(sha256.New, v.key[:])
	mac.Write([]byte(hash))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var digest [32]byte
	copy(digest[:], mac.Sum(nil))
	v.mu.Lock()
	_, ok := v.known[digest]
	v.mu.Unlock()
	if ok {
		return true
	}
	if !check(hash, password) {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.known[digest]; !ok {
		v.known[digest] = v.order.PushBack(digest)
		if v.order.Len() > v.limit {
			oldest := v.order.Front()
			v.order.Remove(oldest)
			delete(v.known, oldest.Value.([32]byte))
		}
	}
	return true
}

func check(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		p, err := parseArgon2(hash)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		return subtle.ConstantTimeCompare(got, p.key) == 1
	}
	if !IsHash(hash) {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// Bounds on hash parameters: a hash in the file must not be able to make
// one login take minutes or gigabytes.
const (
	maxArgon2Memory = 1 << 20 // KiB: 1 GiB
	maxArgon2Time   = 64
	maxBcryptCost   = 16 // a few seconds a check
)

type argon2Params struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseArgon2 reads $argon2id$v=19$m=65536,t=3,p=2$salt$key.
func parseArgon2(s string) (argon2Params, error) {
	var p argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return p, fmt.Errorf("password: not an argon2id hash")
	}
	var threads uint32
	var rest string
	n, _ := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d%s", &p.memory, &p.time, &threads, &rest)
	if n != 3 || threads == 0 || threads > 255 || p.time == 0 || p.time > maxArgon2Time ||
		p.memory < 8*threads || p.memory > maxArgon2Memory {
		return p, fmt.Errorf("password: bad argon2id parameters %q", parts[3])
	}
	p.threads = uint8(threads)
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, fmt.Errorf("password: bad argon2id salt")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 1024 {
		return p, fmt.Errorf("password: bad argon2id key")
	}
	return p, nil
}
