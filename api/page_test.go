package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestPage: the page and its files are served without a token, with a
// policy that forbids anything from elsewhere; the API still needs one.
func TestPage(t *testing.T) {
	h := New(newFake(t), Options{Tokens: []Token{{ID: "ops", Secret: "s3cret"}}})
	for target, typ := range map[string]string{"/": "text/html", "/ui/app.js": "text/javascript", "/ui/style.css": "text/css"} {
		a := get(t, h, target).wantStatus(t, http.StatusOK)
		if !strings.HasPrefix(a.header.Get("Content-Type"), typ) {
			t.Errorf("%s: Content-Type %q, want %s", target, a.header.Get("Content-Type"), typ)
		}
		if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", target, csp)
		}
	}
	index := get(t, h, "/").raw
	for _, banned := range []string{"http://", "https://", "<script>", "style="} {
		if strings.Contains(string(index), banned) {
			t.Errorf("index.html contains %q: the page loads nothing from elsewhere and has no inline code", banned)
		}
	}
	get(t, h, "/ui/missing.js").wantStatus(t, http.StatusNotFound)
	call{method: http.MethodPost, target: "/"}.do(t, h).wantStatus(t, http.StatusMethodNotAllowed)
	get(t, h, pathList).wantStatus(t, http.StatusUnauthorized)
}
