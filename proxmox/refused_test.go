package proxmox

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TestClusterTasksRefusalRemembered: a remote that refuses /cluster/tasks
// (403 for the token, 404 or 501 on a version without it) is not asked
// again for ClusterTasksRetryAfter: the next calls fail with
// ErrClusterTasksRefused and send no request. After that time it is
// asked again, and an answer clears the refusal. A transient failure
// (500) or a bad token (401, which fails every request anyway) is not
// remembered.
func TestClusterTasksRefusalRemembered(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     int
		reason   string
		remember bool
	}{
		{"permission", 403, "Permission check failed (/, Sys.Audit)", true},
		{"not implemented", 501, "Method 'GET /cluster/tasks' not implemented", true},
		{"not found", 404, "Not Found", true},
		{"server error", 500, "Internal Server Error", false},
		{"bad token", 401, "authentication failure", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int64
			var refuse atomic.Bool
			refuse.Store(true)
			srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api2/json/cluster/tasks" {
					http.NotFound(w, r)
					return
				}
				asked.Add(1)
				if refuse.Load() {
					rawResponse(w, tc.code, tc.reason, "application/json;charset=UTF-8", `{"data":null}`, -1)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"data":[]}`))
			}))
			c := newTestClient(t, testConfig(task.PVE, srv.endpoint()))
			ctx := context.Background()

			_, err := c.ClusterTasksPage(ctx)
			if err == nil || errors.Is(err, ErrClusterTasksRefused) || asked.Load() != 1 {
				t.Fatalf("first call: %v after %d requests, want the remote's answer after 1", err, asked.Load())
			}
			if got := c.ClusterTasksRefused(); got != tc.remember {
				t.Fatalf("ClusterTasksRefused after HTTP %d: %v, want %v", tc.code, got, tc.remember)
			}
			_, err = c.ClusterTasksPage(ctx)
			if !tc.remember {
				if errors.Is(err, ErrClusterTasksRefused) || asked.Load() != 2 {
					t.Fatalf("second call after HTTP %d: %v after %d requests, want a new request", tc.code, err, asked.Load())
				}
				return
			}
			if !errors.Is(err, ErrClusterTasksRefused) || asked.Load() != 1 {
				t.Fatalf("second call: %v after %d requests, want ErrClusterTasksRefused without a request", err, asked.Load())
			}
			assertNoSecret(t, "refusal error", fmtAll(err))

			// An hour later (the refusal's time moved back), it asks again;
			// the permission was granted meanwhile.
			refuse.Store(false)
			c.clusterRefused.Store(time.Now().Add(-ClusterTasksRetryAfter - time.Second).UnixNano())
			if c.ClusterTasksRefused() {
				t.Fatal("refusal still remembered after ClusterTasksRetryAfter")
			}
			if _, err := c.ClusterTasksPage(ctx); err != nil || asked.Load() != 2 {
				t.Fatalf("after the retry time: %v after %d requests, want an answer after 2", err, asked.Load())
			}
			if c.ClusterTasksRefused() {
				t.Error("an answer did not clear the refusal")
			}
		})
	}
}
