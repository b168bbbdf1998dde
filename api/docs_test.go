package api

import (
	"os"
	"strings"
	"testing"
)

// TestDocsCoverEveryEndpoint keeps docs/api.md in step with the routes:
// each endpoint needs a curl example.
func TestDocsCoverEveryEndpoint(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(newFake(t), Options{})
	paths := []string{"/livez", "/healthz", "/readyz"}
	for p := range s.routes {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if !strings.Contains(string(doc), `$URL`+p) {
			t.Errorf("docs/api.md has no curl example for %s", p)
		}
	}
}
