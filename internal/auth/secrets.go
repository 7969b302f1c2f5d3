package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// TokenPrefix marks BrightRun API tokens, so they are recognisable in logs
// and secret scanners and distinguishable from JWTs.
const TokenPrefix = "br_"

// randomString returns n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewAPIToken returns a fresh token, its stored hash and a display prefix.
func NewAPIToken() (token, hash, prefix string) {
	token = TokenPrefix + randomString(32)
	return token, HashSecret(token), token[:len(TokenPrefix)+6]
}

// HashSecret is how tokens and session ids are stored: SHA-256 hex. They are
// 256-bit random values, so a fast hash is appropriate (unlike passwords).
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
