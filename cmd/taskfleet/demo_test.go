package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/api"
)

// TestDemo runs the demo with a small fleet: it must print where the API
// is and a curl line, serve tasks within 30 s, stop on SIGINT with status
// 0 and remove its temporary directory.
func TestDemo(t *testing.T) {
	t.Parallel()
	p := start(t, "demo", "--pve", "2", "--pbs", "1", "--listen", anyPort, "--log-format", "json")
	base := demoAPI(t, p)
	began := time.Now()
	if out := p.stdout.String(); !strings.Contains(out, "curl -s '"+base+"/api2/json/remotes/tasks/list?limit=5' | jq") {
		t.Errorf("no curl line in:\n%s", out)
	}
	c := &apiClient{t: t, base: base}
	var total int
	eventually(t, 30*time.Second, "no tasks within 30 s", func() bool {
		r := c.do(http.MethodGet, "/api2/json/remotes/tasks/list", "", url.Values{"limit": {"5"}})
		if r.status == http.StatusOK && r.Total != nil {
			total = *r.Total
		}
		return total > 0 && len(itemsToTasks(t, listItems(t, r))) == 5
	})
	t.Logf("first tasks %v after the API was announced: %d", time.Since(began).Round(time.Millisecond), total)
	eventually(t, 30*time.Second, "backfill not complete", func() bool {
		return strings.Contains(p.stderr.String(), `"message":"backfill complete: 3 remotes`)
	})

	p.signal(syscall.SIGINT)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT, want 0", code)
	}
	dir := configDir(t, p.stderr.String())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s not removed: %v", dir, err)
	}
}

// demoAPIAt is the line of the demo's help that says where the API is.
var demoAPIAt = regexp.MustCompile(`the API is at (http://127\.0\.0\.1:[0-9]+)/api2/json`)

// demoAPI waits until the demo p has printed its help and returns the
// API's base URL it names: the demo listens where the kernel put it
// (--listen with port 0).
func demoAPI(t *testing.T, p *proc) string {
	t.Helper()
	var base string
	eventually(t, 60*time.Second, "demo did not print where the API is", func() bool {
		if !p.running() {
			t.Fatalf("demo exited with %d", p.code)
		}
		// The help is one write: its last part is there with the first.
		out := p.stdout.String()
		if m := demoAPIAt.FindStringSubmatch(out); m != nil && strings.Contains(out, "Remotes: ") {
			base = m[1]
			return true
		}
		return false
	})
	return base
}

func listItems(t *testing.T, r *reply) (items []api.TaskListItem) {
	t.Helper()
	if err := json.Unmarshal(r.Data, &items); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
	return items
}

// configDir finds the demo's configuration directory in its JSON logs.
func configDir(t *testing.T, logs string) string {
	t.Helper()
	for line := range strings.SplitSeq(logs, "\n") {
		var ev struct {
			Message string `json:"message"`
			Config  string `json:"config"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == "simulated fleet running" {
			return filepath.Dir(ev.Config)
		}
	}
	t.Fatal("no \"simulated fleet running\" line with the config in the logs")
	return ""
}
