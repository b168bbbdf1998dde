package task

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// EscapeWorkerID escapes a PBS worker id the way proxmox-schema does
// (systemd unit-name style): '/' becomes '-', and every byte other than
// A-Z a-z 0-9 '_' '.', and a '.' in the first position, becomes \xNN with
// lower-case hex digits.
func EscapeWorkerID(id string) string {
	return string(appendEscapedWorkerID(nil, id))
}

// appendEscapedWorkerID appends EscapeWorkerID(id).
func appendEscapedWorkerID(b []byte, id string) []byte {
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c == '/':
			b = append(b, '-')
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.' && i > 0:
			b = append(b, c)
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xF])
		}
	}
	return b
}

// UnescapeWorkerID reverses EscapeWorkerID: \xNN (either case) becomes that
// byte, '-' becomes '/', anything else stays. A backslash not followed by
// 'x' and two hex digits is an error.
func UnescapeWorkerID(s string) (string, error) {
	if !strings.ContainsAny(s, `\-`) {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("text is not valid UTF-8")
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '-':
			b.WriteByte('/')
		case '\\':
			if i+3 >= len(s) || s[i+1] != 'x' {
				return "", fmt.Errorf("bad escape at byte %d: want \\x and two hex digits", i)
			}
			hi, ok1 := unhex(s[i+2])
			lo, ok2 := unhex(s[i+3])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("bad escape at byte %d: want \\x and two hex digits", i)
			}
			b.WriteByte(hi<<4 | lo)
			i += 3
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", fmt.Errorf("unescaped text is not valid UTF-8")
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
