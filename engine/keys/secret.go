package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

const (
	// SecretPrefix starts every key, so leaked keys are easy to spot.
	SecretPrefix = "crl_"
	// secretDigits is the base62 length of 32 bytes (62^43 > 2^256).
	secretDigits = 43
	// prefixLen is how much of the secret after SecretPrefix is kept for display.
	prefixLen = 8
)

// newSecret returns SecretPrefix and 32 random bytes in base62, padded
// to a fixed length.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("keys: read random bytes: %w", err)
	}
	digits := new(big.Int).SetBytes(b[:]).Text(62)
	return SecretPrefix + strings.Repeat("0", secretDigits-len(digits)) + digits, nil
}

// newID returns a short random ID, 8 hex digits.
func newID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("keys: read random bytes: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// hashSecret is what the store keeps instead of the secret.
func hashSecret(secret string) string {
	h := secretHash(secret)
	return string(h[:])
}

// secretHash is hashSecret in an array: Authorize, which every request
// goes through, looks it up with no string made.
func secretHash(secret string) (h [2 * sha256.Size]byte) {
	sum := sha256.Sum256([]byte(secret))
	hex.Encode(h[:], sum[:])
	return h
}
