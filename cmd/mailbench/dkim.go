package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// dkimSign signs msg as the domain of from with the PKCS #8 PEM key in
// keyPath under selector, so a server that checks DKIM has a signature to
// verify (see cmd/benchdns); with no keyPath msg is returned as it is.
func dkimSign(msg []byte, from, keyPath, selector string) ([]byte, error) {
	if keyPath == "" {
		return msg, nil
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key", keyPath)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	_, domain, _ := strings.Cut(from, "@")
	var b bytes.Buffer
	err = dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: signer})
	return b.Bytes(), err
}
