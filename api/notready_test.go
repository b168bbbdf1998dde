package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestNotReadyAnswers503: while the service starts (its cache loads), list
// and statistics answer 503 with Retry-After; that is not a failure of the
// daemon: nothing logged at error, nothing counted as internal.
func TestNotReadyAnswers503(t *testing.T) {
	var buf bytes.Buffer
	b := newFake(t)
	b.tasksErr = fmt.Errorf("service not started yet: %w", ErrNotReady)
	edge := NewEdge(0)
	h := New(b, Options{Tokens: tokens, Logger: zerolog.New(&buf).Level(zerolog.DebugLevel), Edge: edge})
	for _, path := range []string{"/api2/json/remotes/tasks/list", "/api2/json/remotes/tasks/list?format=csv", "/api2/json/remotes/tasks/statistics"} {
		a := call{target: path, token: adminSecret}.do(t, h).wantStatus(t, http.StatusServiceUnavailable)
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", path)
		}
		if !strings.HasPrefix(a.Msg, "not ready") || string(a.Data) != "null" {
			t.Errorf("%s: body %s, want data null and a not-ready message", path, a.raw)
		}
	}
	if strings.Contains(buf.String(), `"level":"error"`) {
		t.Errorf("not ready logged at error:\n%s", buf.String())
	}
	if n := edge.Refused()["internal"]; n != 0 {
		t.Errorf("%d answers counted as internal, want 0", n)
	}
}
