package password

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// argon2Hash encodes an argon2id hash of pw with small, test-sized costs.
func argon2Hash(pw string, salt []byte) string {
	key := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestHash(t *testing.T) {
	t.Parallel()
	h, err := Hash("anna-secret")
	if err != nil {
		t.Fatal(err)
	}
	if !IsHash(h) || !strings.HasPrefix(h, "$2a$10$") {
		t.Fatalf("Hash gave %q, want a cost-10 bcrypt hash", h)
	}
	if !NewVerifier().Verify(h, "anna-secret") {
		t.Fatal("right password refused")
	}
	if _, err := Hash(""); err == nil {
		t.Fatal("empty password hashed")
	}
	if _, err := Hash(strings.Repeat("x", 73)); err == nil {
		t.Fatal("a password bcrypt would truncate was hashed")
	}
}

func TestVerifyAfterCaching(t *testing.T) {
	t.Parallel()
	// Cost 4 keeps the test fast; the cache does not care about the cost.
	b, err := bcrypt.GenerateFromPassword([]byte("anna-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier()
	for _, h := range []string{string(b), argon2Hash("anna-secret", []byte("saltsalt"))} {
		for i := range 2 { // the second round is answered from the cache
			if !v.Verify(h, "anna-secret") {
				t.Fatalf("round %d: right password refused", i)
			}
			for _, wrong := range []string{"anna-secreT", "", "anna-secret ", "anna-secret\x00"} {
				if v.Verify(h, wrong) {
					t.Fatalf("round %d: wrong password %q accepted after the right one", i, wrong)
				}
			}
		}
	}
}

// TestCacheIsPerHash: a cached success for one hash says nothing about
// another hash, such as the one that replaced it in the file.
func TestCacheIsPerHash(t *testing.T) {
	t.Parallel()
	v := NewVerifier()
	old := argon2Hash("old-secret", []byte("saltsalt1"))
	replaced := argon2Hash("new-secret", []byte("saltsalt2"))
	if !v.Verify(old, "old-secret") {
		t.Fatal("right password refused")
	}
	if v.Verify(replaced, "old-secret") {
		t.Fatal("the old password opened the new hash")
	}
}

func TestBcryptVariants(t *testing.T) {
	t.Parallel()
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier()
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		variant := prefix + string(h[4:])
		if !IsHash(variant) || !v.Verify(variant, "pw") || v.Verify(variant, "PW") {
			t.Errorf("%s hash not handled", prefix)
		}
	}
}

func TestArgon2id(t *testing.T) {
	t.Parallel()
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw"), salt, 2, 1024, 2, 32)
	h := fmt.Sprintf("$argon2id$v=19$m=1024,t=2,p=2$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	if !IsHash(h) {
		t.Fatal("argon2id hash not recognised")
	}
	v := NewVerifier()
	for i := range 2 {
		if !v.Verify(h, "pw") || v.Verify(h, "other") {
			t.Fatalf("round %d: argon2id verification wrong", i)
		}
	}
}

func TestIsHashRefusesGarbage(t *testing.T) {
	t.Parallel()
	salt := base64.RawStdEncoding.EncodeToString([]byte("saltsalt"))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	for _, s := range []string{
		"", "plaintext", "$2a$10$short", "$1$abc$def", "$2a$17$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe", "$2a$99$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe",
		"$argon2id$v=19$m=1$x$y",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=18$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, // 4 TiB
		"$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + "AAAA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + key,
	} {
		if IsHash(s) {
			t.Errorf("IsHash(%q) = true", s)
		}
		if NewVerifier().Verify(s, "") {
			t.Errorf("Verify(%q) accepted", s)
		}
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	v := NewVerifier()
	v.limit = 3
	h := argon2Hash("pw", []byte("saltsalt"))
	for i := range 10 {
		// Distinct hashes of one password: each is a new cache entry.
		hi := argon2Hash(fmt.Sprint("pw", i), []byte("saltsalt"))
		if !v.Verify(hi, fmt.Sprint("pw", i)) {
			t.Fatalf("password %d refused", i)
		}
	}
	if !v.Verify(h, "pw") {
		t.Fatal("right password refused")
	}
	if len(v.known) != 3 || v.order.Len() != 3 {
		t.Fatalf("cache holds %d/%d entries, want 3", len(v.known), v.order.Len())
	}
}

func TestVerifyConcurrently(t *testing.T) {
	t.Parallel()
	v := NewVerifier()
	v.limit = 4
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := fmt.Sprint("pw", g%5)
			h := argon2Hash(pw, []byte("saltsalt"))
			for range 20 {
				if !v.Verify(h, pw) || v.Verify(h, pw+"x") {
					t.Error("wrong answer under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(v.known) > 4 {
		t.Fatalf("cache grew to %d", len(v.known))
	}
}

func FuzzIsHash(f *testing.F) {
	for _, s := range []string{"$2a$04$kWJBmPNFpKNk10jL0swA1OlIua9CN2KIB2r7OGIkn6QeR3lrVqJCe", argon2Hash("pw", []byte("saltsalt")), "$argon2id$v=19$m=64,t=1,p=1$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if IsHash(s) {
			NewVerifier().Verify(s, "pw") // must not panic or run away
		}
	})
}

// TestVerifyUnknownTakesAsLong: refusing an unknown user costs about what
// refusing a wrong password does, so timing does not reveal who exists.
func TestVerifyUnknownTakesAsLong(t *testing.T) {
	t.Parallel()
	v := NewVerifier()
	h, err := Hash("right")
	if err != nil {
		t.Fatal(err)
	}
	v.VerifyUnknown("warm-up") // makes the decoy hash
	fastest := func(f func()) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 2 {
			start := time.Now()
			f()
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong := fastest(func() { v.Verify(h, "wrong") })
	unknown := fastest(func() { v.VerifyUnknown("wrong") })
	if unknown < wrong/3 {
		t.Fatalf("unknown user refused in %v, wrong password in %v", unknown, wrong)
	}
}
