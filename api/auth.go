package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Token is a bearer token of the API.
type Token struct {
	ID     string // shown in logs, never the secret
	Secret string // the bearer value
	// Remotes are the remote ids the token may see; nil means all.
	Remotes []string
}

// String describes the token without its secret.
func (t Token) String() string {
	return fmt.Sprintf("{ID:%s Secret:[redacted] Remotes:%v}", t.ID, t.Remotes)
}

// Format prints the token without its secret with every fmt verb.
func (t Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// MarshalJSON encodes the token without its secret.
func (t Token) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"id":%q,"secret":"[redacted]"}`, t.ID), nil
}

// credential is a configured token as the server keeps it: the SHA-256 of
// the secret, so that every comparison has the same length.
type credential struct {
	id    string
	hash  [sha256.Size]byte
	scope map[string]bool // nil: every remote
}

func newCredentials(tokens []Token) []credential {
	creds := make([]credential, len(tokens))
	for i, t := range tokens {
		creds[i] = credential{id: t.ID, hash: sha256.Sum256([]byte(t.Secret))}
		if t.Remotes != nil {
			creds[i].scope = make(map[string]bool, len(t.Remotes))
			for _, r := range t.Remotes {
				creds[i].scope[r] = true
			}
		}
	}
	return creds
}

// caller is who sent a request.
type caller struct {
	token string          // token id; "" without authentication
	scope map[string]bool // remotes it may see; nil: all
}

// scoped reports whether the caller is limited to some remotes.
func (c *caller) scoped() bool { return c.scope != nil }

// allows reports whether the caller may see remote.
func (c *caller) allows(remote string) bool { return c.scope == nil || c.scope[remote] }

// remotes returns the caller's remotes, sorted; nil if unscoped.
func (c *caller) remotes() []string {
	if c.scope == nil {
		return nil
	}
	out := make([]string, 0, len(c.scope))
	for r := range c.scope {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// forbidden is the 403 answer for a remote outside the caller's scope.
func (c *caller) forbidden(remote string) *apiError {
	return errorf(http.StatusForbidden, "permission check failed: token %q may not access remote %q", c.token, remote)
}

// authenticate finds the token of the request's "Authorization: Bearer"
// header. Without configured tokens every request is allowed. The secret
// is compared with every token in constant time, whether or not an
// earlier one matched, so the timing tells nothing about which token or
// how much of it matched.
func (s *server) authenticate(r *http.Request) (*caller, *apiError) {
	if len(s.creds) == 0 {
		return &caller{}, nil
	}
	scheme, secret, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, errorf(http.StatusUnauthorized, "authentication required: send Authorization: Bearer <secret>")
	}
	sum := sha256.Sum256([]byte(secret))
	match := -1
	for i := range s.creds {
		eq := subtle.ConstantTimeCompare(sum[:], s.creds[i].hash[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, errorf(http.StatusUnauthorized, "authentication failed")
	}
	return &caller{token: s.creds[match].id, scope: s.creds[match].scope}, nil
}
