package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/notify/tmpl"
	"github.com/taskfleet/taskfleet/sim"
)

// TestServeNotifies: serve runs the [[notify]] targets: a task that
// finishes after the start and matches a rule reaches the webhook, and
// the delivery state is kept in the cache directory.
func TestServeNotifies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]int{}
	hook := webhookReceiver(t, &mu, func(m tmpl.Message) {
		for _, tk := range m.Tasks {
			got[tk.UPID]++
		}
	})
	var ahead atomic.Int64 // the fleet's clock runs ahead of the real one by this
	fleet := newFleet(t, sim.Config{Seed: 5, PVEClusters: 1, NodesPerCluster: 1, History: time.Hour, IndexSize: 100,
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	dir := t.TempDir()
	path := writeConfig(t, fleet, dir, anyPort, `
[[notify]]
name = "hook"
kind = "webhook"
url = "`+hook.URL+`/alerts"
group_window = "1s"

[[notify.rule]]
type = "vzdump"
status = ["ok"]
`)
	srv := serveInProcess(t, path, "--log-level", "debug")
	c, stderr := srv.c, &srv.stderr
	eventually(t, 10*time.Second, "notifiers started", func() bool { return strings.Contains(stderr.String(), "notifiers started") })
	r := fleet.Remotes()[0]
	u := fleet.StartTask(r.ID, r.Endpoints[0].Node, "vzdump", "999", time.Second)
	ahead.Store(int64(2 * time.Second)) // it has finished
	defer func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("got %v, want %s; notify logs:\n%s", got, u, grepLines(stderr.String(), `"component":"notify"`))
			for _, tk := range c.list("", nil) {
				if tk.UPID == u {
					t.Logf("cached: %+v", tk)
				}
			}
			mu.Unlock()
		}
	}()
	eventually(t, 20*time.Second, "the task delivered", func() bool {
		c.refreshAll("") // until the task has finished
		mu.Lock()
		defer mu.Unlock()
		return got[u.String()] == 1
	})
	// A reload that adds a target restarts the notifiers with both.
	appendFile(t, path, `
[[notify]]
name = "second"
kind = "webhook"
url = "`+hook.URL+`/second"

[[notify.rule]]
`)
	c.do(http.MethodPost, "/api2/json/reload", "", nil).ok(t, nil)
	eventually(t, 10*time.Second, "notifiers restarted", func() bool {
		return strings.Contains(stderr.String(), `"targets":2,`)
	})
	srv.stop()
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "notify", "hook.json"))
	if len(matches) != 1 {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("no delivery state under %s (%v)", dir, entries)
	}
	if s := stderr.String(); !strings.Contains(s, `"message":"notifiers stopped"`) || strings.Contains(s, hook.URL) {
		t.Errorf("logs:\n%s", tail(s, 2000))
	}
}

// webhookReceiver is a [[notify]] webhook that decodes each message (the
// default JSON body) and hands it to got with mu held. It is closed at
// the test's end.
func webhookReceiver(t *testing.T, mu *sync.Mutex, got func(tmpl.Message)) *httptest.Server {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m tmpl.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		got(m)
	}))
	t.Cleanup(hook.Close)
	return hook
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
