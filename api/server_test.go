package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestProbes(t *testing.T) {
	b := newFake(t)
	b.ready = false
	h := New(b, Options{Tokens: tokens})
	for _, p := range []string{"/livez", "/healthz"} {
		if a := get(t, h, p).wantStatus(t, http.StatusOK); a.raw != "ok\n" {
			t.Errorf("%s body %q", p, a.raw)
		}
	}
	// Not ready says why (the fake's reason is a full disk).
	if a := get(t, h, "/readyz").wantStatus(t, http.StatusServiceUnavailable); !strings.HasPrefix(a.raw, "not ready: cache writes failing") || !strings.Contains(a.raw, "no space left on device") {
		t.Errorf("/readyz body %q, want the reason", a.raw)
	}
	b.mu.Lock()
	b.ready = true
	b.mu.Unlock()
	get(t, h, "/readyz").wantStatus(t, http.StatusOK)
	a := call{method: http.MethodPost, target: "/livez"}.do(t, h).wantStatus(t, http.StatusMethodNotAllowed)
	if a.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow = %q", a.header.Get("Allow"))
	}
}

func TestRouting(t *testing.T) {
	h := New(newFake(t), Options{})
	cases := []struct {
		call   call
		status int
		allow  string
	}{
		{call: call{method: http.MethodPost, target: "/api2/json/remotes/tasks/list"}, status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{call: call{method: http.MethodDelete, target: "/api2/json/remotes/status"}, status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{call: call{method: http.MethodGet, target: "/api2/json/remotes/tasks/refresh"}, status: http.StatusMethodNotAllowed, allow: "POST"},
		{call: call{method: http.MethodGet, target: "/api2/json/remotes/tasks/track"}, status: http.StatusMethodNotAllowed, allow: "POST, DELETE"},
		{call: call{method: http.MethodGet, target: "/api2/json/reload"}, status: http.StatusMethodNotAllowed, allow: "POST"},
		{call: call{target: "/api2/json/remotes/tasks"}, status: http.StatusNotFound},
		{call: call{target: "/api2/extjs/remotes/tasks/list"}, status: http.StatusNotFound},
		{call: call{target: "/nope"}, status: http.StatusNotFound}, // "/" is the task page
		{call: call{target: "/api2/json/remotes/tasks/list/"}, status: http.StatusOK},
		{call: call{method: http.MethodHead, target: "/api2/json/remotes/tasks/list"}, status: http.StatusOK},
	}
	for _, c := range cases {
		a := c.call.do(t, h)
		if a.status != c.status {
			t.Errorf("%s %s: status %d, want %d", c.call.method, c.call.target, a.status, c.status)
		}
		if got := a.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.call.method, c.call.target, got, c.allow)
		}
		if c.status >= 400 && (a.Msg == "" || string(a.Data) != "null") {
			t.Errorf("%s %s: error body %s, want data null and a message", c.call.method, c.call.target, a.raw)
		}
	}
	a := get(t, h, "/api2/json/nope")
	if a.Msg != "Path '/api2/json/nope' not found." {
		t.Errorf("404 message %q", a.Msg)
	}
}

// TestRequestLog checks the one debug line per request and that no secret
// reaches the log.
func TestRequestLog(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	b := newFake(t)
	h := New(b, Options{Tokens: tokens, Logger: log})
	call{target: "/api2/json/remotes/tasks/list?limit=1", token: eastSecret}.do(t, h).wantStatus(t, http.StatusOK)
	call{target: "/api2/json/remotes/tasks/list", token: "wrong-" + adminSecret}.do(t, h).wantStatus(t, http.StatusUnauthorized)
	b.tasksErr = errTest
	call{target: "/api2/json/remotes/tasks/list", token: adminSecret}.do(t, h).wantStatus(t, http.StatusInternalServerError)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	var requests []map[string]any
	for _, m := range lines {
		if m["message"] == "request" {
			requests = append(requests, m)
		}
	}
	if len(requests) != 3 {
		t.Fatalf("%d request lines, want 3:\n%s", len(requests), buf.String())
	}
	first := requests[0]
	if first["level"] != "debug" || first["method"] != "GET" || first["path"] != "/api2/json/remotes/tasks/list" ||
		first["status"] != float64(200) || first["token"] != "east-team" {
		t.Errorf("request line = %v", first)
	}
	if _, ok := first["duration_ms"]; !ok || first["request_id"] == nil {
		t.Errorf("request line without duration: %v", first)
	}
	if requests[1]["status"] != float64(401) || requests[2]["status"] != float64(500) {
		t.Errorf("statuses %v %v, want 401 500", requests[1]["status"], requests[2]["status"])
	}
	if !strings.Contains(buf.String(), `"level":"error"`) || !strings.Contains(buf.String(), errTest.Error()) {
		t.Errorf("backend failure not logged at error:\n%s", buf.String())
	}
	for _, s := range []string{adminSecret, eastSecret, "limit=1"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log contains %q", s)
		}
	}
}

var errTest = &testError{}

type testError struct{}

func (*testError) Error() string { return "cache read failed" }

func TestPanicIsAnswered(t *testing.T) {
	var buf bytes.Buffer
	b := newFake(t)
	b.panics = true
	a := get(t, New(b, Options{Logger: zerolog.New(&buf)}), "/api2/json/remotes/tasks/list").wantStatus(t, http.StatusInternalServerError)
	id := a.header.Get("X-Request-Id")
	if id == "" || a.Msg != "internal error (request id "+id+"; the daemon's log has the details)" {
		t.Errorf("message %q, request id %q", a.Msg, id)
	}
	if !strings.Contains(buf.String(), `"request_id":"`+id+`"`) {
		t.Errorf("panic logged without the request id: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "fake backend panic") {
		t.Errorf("panic not logged: %s", buf.String())
	}
}
