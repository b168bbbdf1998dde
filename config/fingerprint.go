package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// ParseFingerprint reads a certificate's SHA-256 fingerprint in any of the
// forms people paste and returns it as Proxmox shows it: 32 upper-case hex
// bytes separated by colons. Accepted: "AB:CD:…" in either case, the 64
// hex digits without colons, and openssl's output "sha256 Fingerprint=AB:…"
// (or "SHA256 Fingerprint=…"). The error quotes what was received only
// when it has the shape of a fingerprint (hex pairs with colons; a
// fingerprint is not a secret, but a secret pasted into the wrong field is
// never quoted) and says what is wanted.
func ParseFingerprint(s string) (string, error) {
	sum, err := ParseFingerprintSum(s)
	if err != nil {
		return "", err
	}
	return FormatFingerprint(sum), nil
}

// ParseFingerprintSum is ParseFingerprint returning the SHA-256 sum itself:
// what a pinned connection compares the certificate's with.
func ParseFingerprintSum(s string) ([sha256.Size]byte, error) {
	in := strings.TrimSpace(s)
	h := in
	if i := strings.IndexByte(h, '='); i >= 0 {
		prefix := strings.ToLower(strings.TrimSpace(h[:i]))
		switch prefix {
		case "sha256 fingerprint", "sha256fingerprint":
			h = strings.TrimSpace(h[i+1:])
		case "sha1 fingerprint", "md5 fingerprint":
			return [sha256.Size]byte{}, fmt.Errorf("got a %s fingerprint: want the SHA-256 one (openssl x509 -noout -fingerprint -sha256)", strings.ToUpper(strings.Fields(prefix)[0]))
		}
	}
	colons := strings.Contains(h, ":")
	h = strings.ReplaceAll(h, ":", "")
	b, err := hex.DecodeString(h)
	if err == nil && len(b) == sha256.Size {
		return [sha256.Size]byte(b), nil
	}
	// What was received: quoted when it has the shape of a fingerprint
	// (hex pairs with colons, which no secret has), described otherwise,
	// since a secret pasted into the wrong field must not be echoed.
	got := fmt.Sprintf("got %d characters, not hex", len(in))
	switch {
	case err == nil && colons:
		got = fmt.Sprintf("got %q, %d bytes", clipValue(in), len(b))
	case err == nil:
		got = fmt.Sprintf("got %d hex digits (%d bytes)", len(h), len(b))
	case allHex(h):
		got = fmt.Sprintf("got %d hex digits, an odd number", len(h))
	}
	if err == nil && len(b) == 20 {
		return [sha256.Size]byte{}, fmt.Errorf("%s: that is a SHA-1 fingerprint; want the SHA-256 one, 32 hex bytes (openssl x509 -noout -fingerprint -sha256)", got)
	}
	return [sha256.Size]byte{}, fmt.Errorf("%s: want 32 hex bytes, the certificate's SHA-256 fingerprint (\"AB:CD:…\", with or without colons, or openssl's \"sha256 Fingerprint=AB:…\")", got)
}

// FormatFingerprint returns a SHA-256 sum as Proxmox shows fingerprints.
func FormatFingerprint(sum [sha256.Size]byte) string { return formatFingerprint(sum[:]) }

func formatFingerprint(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, len(b)*3)
	for i, c := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[c>>4], digits[c&0xF])
	}
	return string(out)
}

// clipValue shortens a value quoted in a message to at most 110 bytes.
func clipValue(s string) string {
	const n = 110
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}
