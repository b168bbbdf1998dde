package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGzipOverOneKiB(t *testing.T) {
	runInBubble(t, Config{Seed: 30, PVEClusters: 1, PBSServers: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		gz := map[string]string{"Accept-Encoding": "gzip"}
		for _, tc := range []struct {
			remote, path string
			gzipped      bool
		}{
			{"pve-c001", "/api2/json/nodes/pve-c001-n1/tasks?limit=50", true},
			{"pve-c001", "/api2/json/nodes/pve-c001-n1/tasks?limit=1", false}, // about 300 bytes
			{"pve-c001", "/api2/json/version", false},
			{"pbs001", "/api2/json/nodes/localhost/tasks?limit=50", false}, // PBS compresses only with deflate
		} {
			r, err := c.do(context.Background(), tc.remote, "", tc.path, gz)
			if err != nil {
				t.Fatal(err)
			}
			body := r.body
			if got := r.header.Get("Content-Encoding") == "gzip"; got != tc.gzipped {
				t.Errorf("%s %s: gzip %v (%d bytes), want %v", tc.remote, tc.path, got, len(body), tc.gzipped)
			}
			if tc.gzipped {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gzip: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gunzip: %v", err)
				}
				if len(body) <= gzipMin {
					t.Errorf("compressed a body of %d bytes", len(body))
				}
			} else if len(body) > gzipMin && tc.remote == "pve-c001" {
				t.Errorf("%s: %d bytes not compressed", tc.path, len(body))
			}
			if !json.Valid(body) {
				t.Errorf("%s: body is not JSON", tc.path)
			}
		}
		// Without Accept-Encoding nothing is compressed.
		r, _ := c.do(context.Background(), "pve-c001", "", "/api2/json/nodes/pve-c001-n1/tasks?limit=50", map[string]string{"Accept-Encoding": ""})
		if r.header.Get("Content-Encoding") != "" || !json.Valid(r.body) {
			t.Errorf("compressed without Accept-Encoding")
		}
	})
}

func TestConnectionClosedAfterErrorsAndAfter100Requests(t *testing.T) {
	runInBubble(t, Config{Seed: 31, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote, node = "pve-c001", "pve-c001-n1"
		for i := 1; i <= 100; i++ {
			r := c.get(remote, node, "/api2/json/version")
			if r.close != (i == 100) {
				t.Fatalf("request %d: Connection: close %v", i, r.close)
			}
		}
		if st := f.Stats(remote); st.Connections != 1 || st.Requests != 100 {
			t.Fatalf("after 100 requests: %d connections, %d requests; want 1, 100", st.Connections, st.Requests)
		}
		c.get(remote, node, "/api2/json/version")
		if st := f.Stats(remote); st.Connections != 2 {
			t.Fatalf("request 101 used %d connections in all, want a second one", st.Connections)
		}
		// An error closes the connection.
		r := c.get(remote, node, "/api2/json/nodes/"+node+"/tasks?limit=x")
		if r.status != http.StatusBadRequest || !r.close {
			t.Fatalf("400 answer: close %v", r.close)
		}
		c.get(remote, node, "/api2/json/version")
		if st := f.Stats(remote); st.Connections != 3 || st.Errors != 1 {
			t.Fatalf("after an error: %d connections, %d errors; want 3, 1", st.Connections, st.Errors)
		}
		// TLS sessions resume on the new connections.
		if st := f.Stats(remote); st.Resumed != 2 {
			t.Errorf("%d resumed handshakes, want 2", st.Resumed)
		}
		// PBS keeps the connection after errors and after 100 requests.
		for range 105 {
			c.get("pbs001", "", "/api2/json/nodes/localhost/tasks?limit=x")
		}
		if st := f.Stats("pbs001"); st.Connections != 1 || st.Errors != 105 {
			t.Fatalf("PBS: %d connections, %d errors; want 1, 105", st.Connections, st.Errors)
		}
	})
}

func TestTokenChecking(t *testing.T) {
	runInBubble(t, Config{Seed: 32, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		pve, pbs := f.Remotes()[1], f.Remotes()[0]
		for _, tc := range []struct {
			name, remote, auth string
			status             int
			reason, body       string
		}{
			{"pve token", pve.ID, "PVEAPIToken=" + pve.TokenID + "=" + pve.TokenSecret, 200, "OK", ""},
			{"pve space form", pve.ID, "PVEAPIToken " + pve.TokenID + "=" + pve.TokenSecret, 200, "OK", ""},
			{"pve after other auth", pve.ID, "Basic x PVEAPIToken=" + pve.TokenID + "=" + pve.TokenSecret + ";x", 200, "OK", ""},
			{"pve no header", pve.ID, "", 401, "No ticket", ""},
			{"pve wrong secret", pve.ID, "PVEAPIToken=" + pve.TokenID + "=nope", 401, "Authentication failed!", ""},
			{"pve wrong token", pve.ID, "PVEAPIToken=taskfleet@pve!other=" + pve.TokenSecret, 401, "Authentication failed!", ""},
			{"pve with pbs separator", pve.ID, "PVEAPIToken=" + pve.TokenID + ":" + pve.TokenSecret, 401, "Authentication failed!", ""},
			{"pve prefix glued", pve.ID, "XPVEAPIToken=" + pve.TokenID + "=" + pve.TokenSecret, 401, "Authentication failed!", ""},
			{"pbs token", pbs.ID, "PBSAPIToken=" + pbs.TokenID + ":" + pbs.TokenSecret, 200, "OK", ""},
			{"pbs space form", pbs.ID, "PBSAPIToken " + pbs.TokenID + ":" + pbs.TokenSecret, 200, "OK", ""},
			{"pbs with pve separator", pbs.ID, "PBSAPIToken=" + pbs.TokenID + "=" + pbs.TokenSecret, 401, "Unauthorized", "authentication failed"},
			{"pbs no header", pbs.ID, "", 401, "Unauthorized", "authentication failed"},
		} {
			r, err := c.do(context.Background(), tc.remote, "", "/api2/json/version", map[string]string{"Authorization": tc.auth})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if r.status != tc.status || r.reason != tc.reason || (tc.status == 401 && string(r.body) != tc.body) {
				t.Errorf("%s: %d %q %q, want %d %q %q", tc.name, r.status, r.reason, r.body, tc.status, tc.reason, tc.body)
			}
		}
	})
}

func TestAuthFailureDelay(t *testing.T) {
	runInBubble(t, Config{Seed: 33, PVEClusters: 1, History: time.Hour, AuthFailureDelay: 3 * time.Second}, func(t *testing.T, f *Fleet, c *testClient) {
		start := time.Now()
		r, err := c.do(context.Background(), "pve-c001", "", "/api2/json/version", map[string]string{"Authorization": "PVEAPIToken=a@b!cd=x"})
		if err != nil || r.status != 401 {
			t.Fatalf("bad token: %v %v", r, err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("401 after %v, want 3s", d)
		}
		start = time.Now()
		c.get("pve-c001", "", "/api2/json/version")
		if d := time.Since(start); d != 0 {
			t.Fatalf("a good token waited %v", d)
		}
	})
}

func TestUnknownPathsAndMethods(t *testing.T) {
	runInBubble(t, Config{Seed: 34, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		r := c.get("pve-c001", "", "/api2/json/nodes/pve-c001-n1/qemu")
		if r.status != http.StatusNotImplemented || r.reason != "Method 'GET /nodes/pve-c001-n1/qemu' not implemented" {
			t.Errorf("unknown PVE path = %d %q", r.status, r.reason)
		}
		r = c.get("pbs001", "", "/api2/json/admin/datastore")
		if r.status != http.StatusNotFound || !strings.Contains(string(r.body), "not found") {
			t.Errorf("unknown PBS path = %d %q", r.status, r.body)
		}
		req, _ := http.NewRequest(http.MethodPost, c.endpoint("pve-c001", "")+"/api2/json/nodes", nil)
		req.Header.Set("Authorization", c.authHeader("pve-c001"))
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("POST /nodes = %d, want 501", resp.StatusCode)
		}
	})
}

// TestOddRequests sends requests a client should not send; every one gets
// an answer (no handler panics) and the servers keep working.
func TestOddRequests(t *testing.T) {
	runInBubble(t, Config{Seed: 35, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		upid := f.StartTask("pve-c001", "pve-c001-n1", "qmstart", "100", time.Minute).String()
		paths := []string{
			"/api2/json/", "/api2/json", "/", "/api2/extjs/nodes", "/api2/json/nodes/", "/api2/json/nodes//tasks",
			"/api2/json/nodes/x%0D%0AEvil:%20yes/tasks", "/api2/json/nodes/%0A/qemu%0D%0Ax",
			"/api2/json/nodes/localhost/tasks/%00/status", "/api2/json/nodes/localhost/tasks//status",
			"/api2/json/nodes/localhost/tasks/" + escapeUPID(upid) + "/status/extra",
			"/api2/json/nodes/localhost/tasks/" + escapeUPID(upid),
			"/api2/json/nodes/localhost/tasks?limit=99999999999999999999",
			"/api2/json/nodes/localhost/tasks?limit=9223372036854775807&start=9223372036854775807",
			"/api2/json/nodes/localhost/tasks?since=-5&until=-9",
			"/api2/json/nodes/localhost/tasks?statusfilter=%00%00&userfilter=%FF%FE",
			"/api2/json/nodes/localhost/tasks?vmid=1e3&typefilter=" + strings.Repeat("x", 4000),
			"/api2/json/nodes/localhost/tasks?source=&errors=&limit=",
			"/api2/json/nodes/localhost/tasks/UPID:pve-c001-n1:00000001:00000001:00000001:t::u:/status",
			"/api2/json/cluster/tasks?x=1", "/api2/json/cluster/status/x", "/api2/json/version?x=%",
		}
		for _, remote := range []string{"pve-c001", "pbs001"} {
			for _, p := range paths {
				r, err := c.do(context.Background(), remote, "", p, nil)
				if err != nil {
					t.Errorf("%s %s: %v", remote, p, err)
					continue
				}
				if r.status == 0 || r.status >= 500 && r.status != 501 {
					t.Errorf("%s %s: %d %q", remote, p, r.status, r.reason)
				}
				if strings.ContainsAny(r.reason, "\r\n") || r.header.Get("Evil") != "" {
					t.Errorf("%s %s: reason %q leaks a line break", remote, p, r.reason)
				}
			}
		}
		// pve-http-server cuts a reason phrase at its first line break.
		if r := c.get("pve-c001", "", "/api2/json/nodes/%0A/qemu%0D%0Ax"); r.reason != "Method 'GET /nodes/" {
			t.Errorf("reason %q, want it cut at the line break", r.reason)
		}
		f.SetFault("pve-c001", "", Fault{Status: 42})
		if r := c.get("pve-c001", "", "/api2/json/version"); r.status != 500 {
			t.Errorf("a Status fault of 42 answers %d, want 500", r.status)
		}
		if n := f.panics.Load(); n != 0 {
			t.Fatalf("%d handler panics", n)
		}
	})
}

// TestIdleTimeoutDefaults checks the products' defaults: a PVE node
// closes a connection idle for 5 s (pveproxy), a PBS server keeps it.
func TestIdleTimeoutDefaults(t *testing.T) {
	runInBubble(t, Config{Seed: 37, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		for _, remote := range []string{"pve-c001", "pbs001"} {
			c.get(remote, "", "/api2/json/version")
			time.Sleep(4900 * time.Millisecond)
			c.get(remote, "", "/api2/json/version")
		}
		if a, b := f.Stats("pve-c001").Connections, f.Stats("pbs001").Connections; a != 1 || b != 1 {
			t.Fatalf("after 4.9 s idle: %d PVE and %d PBS connections, want 1 and 1", a, b)
		}
		time.Sleep(5100 * time.Millisecond)
		for _, remote := range []string{"pve-c001", "pbs001"} {
			c.get(remote, "", "/api2/json/version")
		}
		if a, b := f.Stats("pve-c001").Connections, f.Stats("pbs001").Connections; a != 2 || b != 1 {
			t.Fatalf("after 5.1 s idle: %d PVE and %d PBS connections, want 2 (pveproxy closes after 5 s) and 1", a, b)
		}
		if r := f.Stats("pve-c001").Resumed; r != 1 {
			t.Errorf("%d resumed TLS sessions on the PVE node, want 1 (session tickets are on)", r)
		}
	})
}

// TestConnectionKnobs checks the test knobs: no idle timeout, another
// request cap, no session tickets.
func TestConnectionKnobs(t *testing.T) {
	cfg := Config{Seed: 38, PVEClusters: 1, PBSServers: 1, History: time.Hour, IdleTimeout: -1, MaxRequestsPerConn: 3, NoSessionTickets: true}
	runInBubble(t, cfg, func(t *testing.T, f *Fleet, c *testClient) {
		for _, remote := range []string{"pve-c001", "pbs001"} {
			for i := 1; i <= 4; i++ {
				if r := c.get(remote, "", "/api2/json/version"); r.close != (i == 3) {
					t.Fatalf("%s request %d: Connection: close %v", remote, i, r.close)
				}
			}
			time.Sleep(time.Hour)
			c.get(remote, "", "/api2/json/version")
			if st := f.Stats(remote); st.Connections != 2 || st.Resumed != 0 {
				t.Errorf("%s: %d connections, %d resumed; want 2 (one per 3 requests, none closed for idling), 0", remote, st.Connections, st.Resumed)
			}
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	runInBubble(t, Config{Seed: 36, PVEClusters: 1, History: time.Hour, IdleTimeout: 30 * time.Second}, func(t *testing.T, f *Fleet, c *testClient) {
		c.get("pve-c001", "", "/api2/json/version")
		time.Sleep(29 * time.Second)
		c.get("pve-c001", "", "/api2/json/version")
		if n := f.Stats("pve-c001").Connections; n != 1 {
			t.Fatalf("%d connections after 29s idle, want 1", n)
		}
		time.Sleep(31 * time.Second)
		c.get("pve-c001", "", "/api2/json/version")
		if n := f.Stats("pve-c001").Connections; n != 2 {
			t.Fatalf("%d connections after 31s idle with a 30s idle timeout, want 2", n)
		}
	})
}
