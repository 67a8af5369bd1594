// Package dkim signs outgoing mail with DKIM (RFC 6376) and manages the keys:
// loading them from PEM files, generating new ones and printing the DNS TXT
// record that publishes the public half.
//
// It is a leaf: it must not import the store, the queue, the protocol
// packages, policy or config. The config package hands it paths and
// selectors; the queue calls Signer.Sign at send time.
package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultBits is the RSA key size GenerateKey uses when asked for 0 bits.
const DefaultBits = 2048

// minBits is the smallest RSA key verifiers accept (RFC 8301 section 3.2).
const minBits = 1024

// ErrUnsupportedKey is returned for keys that are neither RSA nor Ed25519, or
// RSA keys too short for verifiers to accept.
var ErrUnsupportedKey = errors.New("dkim: unsupported key")

// LoadKey reads a private key from a PEM file: PKCS#1 RSA ("RSA PRIVATE
// KEY"), or PKCS#8 ("PRIVATE KEY") holding an RSA or Ed25519 key.
func LoadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dkim: read key: %w", err)
	}
	s, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseKey decodes a PEM private key as LoadKey does.
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("dkim: no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q", ErrUnsupportedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("dkim: parse %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minBits {
			return nil, fmt.Errorf("%w: RSA key of %d bits, want at least %d", ErrUnsupportedKey, k.N.BitLen(), minBits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
}

// GenerateKey makes a new RSA key of bits bits (DefaultBits when 0) and
// returns it as a PKCS#8 PEM block, ready to be written to a key file, and
// as a signer.
func GenerateKey(bits int) (pemBytes []byte, signer crypto.Signer, err error) {
	if bits == 0 {
		bits = DefaultBits
	}
	if bits < minBits {
		return nil, nil, fmt.Errorf("%w: RSA key of %d bits, want at least %d", ErrUnsupportedKey, bits, minBits)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("dkim: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("dkim: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), key, nil
}

// TXTRecord returns the DNS name and TXT value that publish pub for selector
// and domain, such as "pk1._domainkey.contoso.test" and
// "v=DKIM1; k=rsa; p=MIIB...".
func TXTRecord(selector, domain string, pub crypto.PublicKey) (name, value string, err error) {
	selector, domain = strings.TrimSpace(selector), strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if selector == "" || domain == "" {
		return "", "", errors.New("dkim: TXT record needs a selector and a domain")
	}
	var algo string
	var raw []byte
	switch k := pub.(type) {
	case *rsa.PublicKey:
		algo = "rsa"
		if raw, err = x509.MarshalPKIXPublicKey(k); err != nil {
			return "", "", fmt.Errorf("dkim: encode public key: %w", err)
		}
	case ed25519.PublicKey:
		// RFC 8463: the bare 32 bytes, not a SubjectPublicKeyInfo.
		algo, raw = "ed25519", []byte(k)
	default:
		return "", "", fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	name = selector + "._domainkey." + strings.ToLower(domain)
	value = "v=DKIM1; k=" + algo + "; p=" + base64.StdEncoding.EncodeToString(raw)
	return name, value, nil
}
