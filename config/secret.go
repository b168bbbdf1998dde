package config

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a Secret prints instead of its value.
const redacted = "[redacted]"

// Secret is a secret string: an API token secret. It prints as
// "[redacted]" with every fmt verb, in JSON and text encodings and in slog;
// only [Secret.Reveal] returns the value.
type Secret string

// Reveal returns the secret's value. Call it only where the value is sent
// (an Authorization header) or compared.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]" quoted, for %#v.
func (s Secret) GoString() string { return `"` + redacted + `"` }

// Format writes "[redacted]" for every verb, so no fmt verb (%s, %q, %x,
// %d...) can print the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') || verb == 'q' {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// MarshalJSON encodes the secret as the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
