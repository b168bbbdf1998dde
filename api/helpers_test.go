package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// answer is a decoded answer of the API.
type answer struct {
	status int
	header http.Header
	raw    string
	Data   json.RawMessage   `json:"data"`
	Total  *int              `json:"total"`
	Msg    string            `json:"message"`
	Errors map[string]string `json:"errors"`
}

// call is one request to the handler under test.
type call struct {
	method, target string
	token          string // Bearer token; "" for none
	body           string
	contentType    string
}

func (c call) do(t *testing.T, h http.Handler) answer {
	t.Helper()
	return c.doWith(t, h, nil)
}

// doWith is do with edit applied to the request before it is sent.
func (c call) doWith(t *testing.T, h http.Handler, edit func(*http.Request)) answer {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req := httptest.NewRequest(method, c.target, body)
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if edit != nil {
		edit(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if method != http.MethodHead && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, c.target, err, a.raw)
		}
	}
	return a
}

// get is a GET request without token.
func get(t *testing.T, h http.Handler, target string) answer {
	t.Helper()
	return call{target: target}.do(t, h)
}

// wantStatus fails the test if a's status is not want.
func (a answer) wantStatus(t *testing.T, want int) answer {
	t.Helper()
	if a.status != want {
		t.Fatalf("status %d, want %d; body %s", a.status, want, a.raw)
	}
	return a
}

// decode decodes a's data into v.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Data, v); err != nil {
		t.Fatalf("decode data: %v\n%s", err, a.raw)
	}
}

// upids returns the upid of every item of a list answer.
func (a answer) upids(t *testing.T) []string {
	t.Helper()
	var items []TaskListItem
	a.decode(t, &items)
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.UPID
	}
	return out
}

// remotesOf returns the remote of every item of a list answer.
func (a answer) remotesOf(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, u := range a.upids(t) {
		head, _, _ := strings.Cut(u, "!")
		_, remote, _ := strings.Cut(head, ":")
		out = append(out, remote)
	}
	return out
}
