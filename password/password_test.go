package password

import (
	"encoding/base64"
	"fmt"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestHashAndVerify(t *testing.T) {
	t.Parallel()
	h, err := Hash("anna-secret")
	if err != nil {
		t.Fatal(err)
	}
	if !IsHash(h) {
		t.Fatalf("IsHash(%q) = false", h)
	}
	v := NewVerifier()
	for i := range 2 { // the second round is answered from the cache
		if !v.Verify(h, "anna-secret") {
			t.Fatalf("round %d: right password refused", i)
		}
		if v.Verify(h, "anna-secreT") || v.Verify(h, "") {
			t.Fatalf("round %d: wrong password accepted", i)
		}
	}
	if _, err := Hash(""); err == nil {
		t.Fatal("empty password hashed")
	}
}

func TestArgon2id(t *testing.T) {
	t.Parallel()
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw"), salt, 1, 64*1024, 2, 32)
	h := fmt.Sprintf("$argon2id$v=19$m=65536,t=1,p=2$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	if !IsHash(h) {
		t.Fatal("argon2id hash not recognised")
	}
	v := NewVerifier()
	if !v.Verify(h, "pw") || v.Verify(h, "other") {
		t.Fatal("argon2id verification wrong")
	}
}

func TestIsHashRefusesGarbage(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plaintext", "$2a$10$short", "$argon2id$v=19$m=1$x$y", "$1$abc$def"} {
		if IsHash(s) {
			t.Errorf("IsHash(%q) = true", s)
		}
	}
}
