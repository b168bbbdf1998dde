package api

import (
	"embed"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// ui is the task page: plain HTML, CSS and JavaScript, no build step and
// nothing loaded from elsewhere (admins' networks are often isolated).
//
//go:embed ui/index.html ui/app.js ui/style.css
var ui embed.FS

// pageTypes are the media types of the page's files.
var pageTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// pageCSP allows the page its own files and API only.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// page serves GET / (the task page) and /ui/*, which need no token: the
// page asks for one when the API answers 401. It reports whether path was
// one of them.
func (s *server) page(w http.ResponseWriter, r *http.Request, p string) bool {
	name := ""
	switch {
	case p == "/":
		name = "ui/index.html"
	case strings.HasPrefix(p, "/ui/"):
		name = "ui/" + path.Base(p)
	default:
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return true
	}
	body, err := ui.ReadFile(name)
	if err != nil {
		writeText(w, http.StatusNotFound, "not found\n")
		return true
	}
	h := w.Header()
	h.Set("Content-Type", pageTypes[path.Ext(name)])
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
	return true
}
