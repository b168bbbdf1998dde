package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const listPath = "/api2/json/nodes/pve-c001-n1/tasks?limit=50"

func TestFaultLatency(t *testing.T) {
	runInBubble(t, Config{Seed: 40, PVEClusters: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		f.SetFault("pve-c001", "", Fault{Latency: 250 * time.Millisecond, ConnectLatency: 2 * time.Second})
		for i, want := range []time.Duration{2250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond} {
			start := time.Now()
			if r := c.get("pve-c001", "pve-c001-n1", "/api2/json/version"); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if d := time.Since(start); d != want {
				t.Errorf("request %d took %v, want %v (connect latency only on a new connection)", i, d, want)
			}
		}
		if st := f.Stats("pve-c001"); st.Connections != 1 {
			t.Errorf("%d connections, want 1", st.Connections)
		}
		f.SetFault("pve-c001", "", Fault{})
		start := time.Now()
		c.get("pve-c001", "pve-c001-n1", "/api2/json/version")
		if d := time.Since(start); d != 0 {
			t.Errorf("after clearing the fault a request took %v", d)
		}
	})
}

func TestFaultHang(t *testing.T) {
	runInBubble(t, Config{Seed: 41, PVEClusters: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		f.SetFault("pve-c001", "pve-c001-n1", Fault{Hang: true})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.do(ctx, "pve-c001", "pve-c001-n1", listPath, nil)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 30*time.Second {
			t.Fatalf("hanging request: %v after %v, want the client's 30s deadline", err, time.Since(start))
		}
		// Another request hangs until the fleet closes; Close must not
		// wait for the client and must leave no goroutine behind (the
		// bubble checks).
		done := make(chan error)
		go func() {
			_, err := c.do(context.Background(), "pve-c001", "pve-c001-n1", listPath, nil)
			done <- err
		}()
		time.Sleep(time.Hour)
		f.Close()
		if err := <-done; err == nil {
			t.Fatal("a hanging request succeeded after Close")
		}
	})
}

func TestFaultStatus(t *testing.T) {
	runInBubble(t, Config{Seed: 42, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		for _, tc := range []struct {
			remote       string
			status       int
			reason, body string
		}{
			{"pve-c001", 500, "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout", `{"data":null,`},
			{"pve-c001", 401, "Authentication failed!", ""},
			{"pve-c001", 403, "Permission check failed", `{"data":null,`},
			{"pve-c001", 595, "Connection refused", ""},
			{"pve-c001", 596, "Connection timed out", ""},
			{"pbs001", 500, "Internal Server Error", "internal server error"},
			{"pbs001", 401, "Unauthorized", "authentication failed"},
		} {
			f.SetFault(tc.remote, "", Fault{Status: tc.status})
			r := c.get(tc.remote, "", listPath)
			if r.status != tc.status || r.reason != tc.reason || !strings.HasPrefix(string(r.body), tc.body) || (tc.body == "" && len(r.body) != 0) {
				t.Errorf("%s fault %d: %d %q %q", tc.remote, tc.status, r.status, r.reason, r.body)
			}
			if r.close != (tc.remote == "pve-c001") {
				t.Errorf("%s fault %d: Connection: close %v", tc.remote, tc.status, r.close)
			}
		}
	})
}

func TestFaultBodies(t *testing.T) {
	runInBubble(t, Config{Seed: 43, PVEClusters: 1, PBSServers: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		good := c.get("pve-c001", "pve-c001-n1", listPath)

		f.SetFault("pve-c001", "pve-c001-n1", Fault{Malformed: true})
		if r := c.get("pve-c001", "pve-c001-n1", listPath); r.status != 200 || json.Valid(r.body) || len(r.body) == 0 {
			t.Errorf("malformed: %d, valid JSON %v", r.status, json.Valid(r.body))
		}

		f.SetFault("pve-c001", "pve-c001-n1", Fault{Truncated: true})
		_, err := c.do(context.Background(), "pve-c001", "pve-c001-n1", listPath, nil)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated: %v, want unexpected EOF", err)
		}

		f.SetFault("pve-c001", "pve-c001-n1", Fault{Trickle: true})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.do(ctx, "pve-c001", "pve-c001-n1", listPath, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("trickle with a 10s deadline: %v", err)
		}
		start := time.Now()
		r := c.get("pve-c001", "pve-c001-n1", listPath)
		if string(r.body) != string(good.body) {
			t.Errorf("trickled body differs from the real one")
		}
		chunks := (len(good.body) + TrickleChunk - 1) / TrickleChunk
		if d := time.Since(start); d != time.Duration(chunks)*TrickleInterval {
			t.Errorf("trickling %d bytes took %v, want %d intervals", len(good.body), d, chunks)
		}

		f.SetFault("pve-c001", "pve-c001-n1", Fault{})
		_, goodTotal := c.list("pve-c001", "pve-c001-n1", "limit=50")
		f.SetFault("pve-c001", "pve-c001-n1", Fault{BadItems: true})
		items, total := c.list("pve-c001", "pve-c001-n1", "limit=50")
		if len(items) != 52 || total != goodTotal {
			t.Fatalf("bad items: %d items, total %d; want 52, %d", len(items), total, goodTotal)
		}
		if !strings.Contains(items[0].UPID, "not-a-upid") || items[1].StartTime != 0 || items[2].UPID == "" {
			t.Errorf("bad items = %+v %+v", items[0], items[1])
		}
		f.SetFault("pbs001", "", Fault{BadItems: true})
		if items, _ := c.list("pbs001", "", "limit=5"); len(items) != 7 || items[1].StartTime != 0 {
			t.Errorf("PBS bad items: %d items", len(items))
		}
	})
}

// TestFaultOversized reads the first 16 MiB of an oversized body, as a
// client with a body cap would, and checks that the server streams it:
// the heap grows far less than what was received.
func TestFaultOversized(t *testing.T) {
	runInBubble(t, Config{Seed: 44, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		for _, remote := range []string{"pve-c001", "pbs001"} {
			f.SetFault(remote, "", Fault{Oversized: true})
			req, _ := http.NewRequest(http.MethodGet, c.endpoint(remote, "")+"/api2/json/nodes/localhost/tasks", nil)
			req.Header.Set("Authorization", c.authHeader(remote))
			resp, err := c.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ContentLength != -1 {
				t.Errorf("%s: oversized body declares Content-Length %d", remote, resp.ContentLength)
			}
			// The body starts as a valid task list.
			dec := json.NewDecoder(resp.Body)
			for _, want := range []json.Token{json.Delim('{'), "data", json.Delim('[')} {
				if tok, err := dec.Token(); err != nil || tok != want {
					t.Fatalf("%s: token %v, %v; want %v", remote, tok, err, want)
				}
			}
			for range 10 {
				var it item
				if err := dec.Decode(&it); err != nil {
					t.Fatalf("%s: item: %v", remote, err)
				}
				tk := it.toTask(t, remote)
				if int64(tk.UPID.PID) != it.PID || int64(tk.UPID.PStart) != it.PStart || tk.UPID.StartTime != it.StartTime || tk.Running() {
					t.Fatalf("%s: item %+v disagrees with its UPID %+v", remote, it, tk.UPID)
				}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const limit = 16 << 20
			n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
			runtime.ReadMemStats(&after)
			resp.Body.Close()
			if err != nil || n != limit {
				t.Fatalf("%s: read %d bytes, %v; want %d more", remote, n, err, limit)
			}
			if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 8<<20 {
				t.Errorf("%s: heap grew by %d MiB while 16 MiB streamed: the body is buffered", remote, grown>>20)
			}
			f.SetFault(remote, "", Fault{})
		}
	})
}

func TestFaultWrongCertificate(t *testing.T) {
	runInBubble(t, Config{Seed: 45, PVEClusters: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		// The client holds a session ticket of the real node: resumption
		// must not hide the impostor.
		c.get("pve-c001", "pve-c001-n2", "/api2/json/version")
		c.close()
		if c.get("pve-c001", "pve-c001-n2", "/api2/json/version"); f.Stats("pve-c001").Resumed != 1 {
			t.Fatalf("the client does not resume sessions; the test needs it to")
		}
		c.close()
		f.SetFault("pve-c001", "pve-c001-n2", Fault{WrongCert: true})
		_, err := c.do(context.Background(), "pve-c001", "pve-c001-n2", "/api2/json/version", nil)
		if err == nil || !strings.Contains(err.Error(), "certificate fingerprint") {
			t.Fatalf("wrong certificate: %v, want a fingerprint mismatch", err)
		}
		if r := c.get("pve-c001", "pve-c001-n1", "/api2/json/version"); r.status != 200 {
			t.Fatalf("other node: %d", r.status)
		}
		f.SetFault("pve-c001", "pve-c001-n2", Fault{})
		if r := c.get("pve-c001", "pve-c001-n2", "/api2/json/version"); r.status != 200 {
			t.Fatalf("after clearing: %d", r.status)
		}
	})
}

func TestFaultOffline(t *testing.T) {
	runInBubble(t, Config{Seed: 46, PVEClusters: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		before := len(f.Truth("pve-c001"))
		c.get("pve-c001", "pve-c001-n2", "/api2/json/version") // an open keep-alive connection
		f.SetFault("pve-c001", "pve-c001-n2", Fault{Offline: true})
		_, err := c.do(context.Background(), "pve-c001", "pve-c001-n2", "/api2/json/version", nil)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("offline node: %v, want connection refused", err)
		}
		time.Sleep(6 * time.Hour)
		f.SetFault("pve-c001", "pve-c001-n2", Fault{})
		items, _ := c.list("pve-c001", "pve-c001-n2", q("since", strconv.FormatInt(time.Now().Add(-6*time.Hour).Unix(), 10), "limit", "1000"))
		if len(items) == 0 {
			t.Fatal("no tasks from the 6 hours offline: its tasks should have kept running")
		}
		if after := len(f.Truth("pve-c001")); after <= before {
			t.Fatalf("ground truth did not grow while the node was offline")
		}
		c.refresh()
		if r := c.get("pve-c001", "pve-c001-n2", "/api2/json/version"); r.status != 200 {
			t.Fatal("back online: same address and certificate expected")
		}
	})
}

func TestAddAndRemoveNodes(t *testing.T) {
	runInBubble(t, Config{Seed: 47, PVEClusters: 1, PBSServers: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		f.SetFault("pve-c001", "", Fault{Latency: time.Second})
		name, err := f.AddNode("pve-c001")
		if err != nil || name != "pve-c001-n4" {
			t.Fatalf("AddNode = %q, %v", name, err)
		}
		if _, err := f.AddNode("pbs001"); err == nil {
			t.Fatal("AddNode to a PBS server succeeded")
		}
		if _, err := f.AddNode("nope"); err == nil {
			t.Fatal("AddNode to an unknown remote succeeded")
		}
		c.refresh()
		start := time.Now()
		env := c.getOK("pve-c001", name, "/api2/json/nodes")
		if time.Since(start) != time.Second {
			t.Errorf("the added node has no remote-wide latency fault")
		}
		var nodes []map[string]any
		json.Unmarshal(env.Data, &nodes)
		if len(nodes) != 4 || nodes[3]["node"] != name {
			t.Fatalf("nodes after AddNode: %v", nodes)
		}
		time.Sleep(2 * time.Hour)
		if items, _ := c.list("pve-c001", name, "source=all"); len(items) == 0 {
			t.Fatal("the added node ran nothing in 2 hours")
		}

		removed := "pve-c001-n2"
		var gone []string
		for _, tk := range f.Held("pve-c001") {
			if tk.UPID.Node == removed {
				gone = append(gone, tk.UPID.String())
			}
		}
		if err := f.RemoveNode("pve-c001", removed); err != nil {
			t.Fatal(err)
		}
		if _, err := c.do(context.Background(), "pve-c001", removed, "/api2/json/version", nil); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("removed node: %v, want connection refused", err)
		}
		truth := map[string]bool{}
		for _, tk := range f.Truth("pve-c001") {
			truth[tk.UPID.String()] = true
		}
		for _, tk := range f.Held("pve-c001") {
			if tk.UPID.Node == removed {
				t.Fatal("a removed node's tasks are still held")
			}
		}
		for _, u := range gone {
			if !truth[u] {
				t.Fatalf("task %s of the removed node left the ground truth", u)
			}
		}
		if r := f.Remotes()[1]; len(r.Nodes) != 3 || len(r.Endpoints) != 3 {
			t.Fatalf("remote after RemoveNode: %+v", r)
		}
		if err := f.RemoveNode("pve-c001", removed); err == nil {
			t.Fatal("removing a node twice succeeded")
		}
		if err := f.RemoveNode("pbs001", "pbs001"); err == nil {
			t.Fatal("removing the last node succeeded")
		}
	})
}
