package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// manualClock is a simulated fleet's clock that moves only when told.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// webRig is the daemon, in this process, polling a simulated fleet whose
// clock the test moves, every second.
type webRig struct {
	t     *testing.T
	fleet *sim.Fleet
	clock *manualClock
	url   string
	cache string
}

func newWebRig(t *testing.T, sc sim.Config) *webRig {
	t.Helper()
	return newWebRigWith(t, sc, "")
}

// newWebRigWith is newWebRig with extra TOML in the configuration (API
// tokens); the rig's own requests then use the ops token.
func newWebRigWith(t *testing.T, sc sim.Config, extra string) *webRig {
	t.Helper()
	clock := &manualClock{t: time.Now()}
	sc.Now = clock.Now
	f := newFleet(t, sc)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path, err := f.WriteDaemonConfig(dir, sim.DaemonOptions{Listen: ln.Addr().String(), Tick: time.Second, RefreshInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, extra)
	cfg, err := loadConfig(zerolog.Nop(), path)
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemon(path, cfg, ln, zerolog.Nop())
	d.refreshAtStart = true
	ctx, cancel := context.WithCancel(context.Background())
	var g run.Group
	g.Add(termination(ctx))
	d.addTo(&g)
	done := make(chan int)
	go func() { done <- d.wait(&g) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("daemon exited %d", code)
		}
	})
	rg := &webRig{t: t, fleet: f, clock: clock, url: "http://" + ln.Addr().String(), cache: cfg.Server.CacheDir}
	rg.eventually(30*time.Second, "backfill", func() bool {
		_, total := rg.list("limit=1")
		return total == len(held(f))
	})
	return rg
}

// eventually polls cond until it holds or d passes.
func (rg *webRig) eventually(d time.Duration, what string, cond func() bool) {
	rg.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			rg.t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getJSON gets an API path and decodes the answer into v.
func (rg *webRig) getJSON(path string, v any) int {
	rg.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rg.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+opsSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rg.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		rg.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

// list returns the remote UPIDs of a list query and its total.
func (rg *webRig) list(query string) ([]string, int) {
	rg.t.Helper()
	var env struct {
		Data []struct {
			UPID   string  `json:"upid"`
			Status *string `json:"status"`
		} `json:"data"`
		Total int `json:"total"`
	}
	rg.getJSON("/api2/json/remotes/tasks/list?"+query, &env)
	var out []string
	for _, it := range env.Data {
		out = append(out, it.UPID)
	}
	return out, env.Total
}

// logAnswer is the log endpoint's answer.
type logAnswer struct {
	Data []struct {
		N int    `json:"n"`
		T string `json:"t"`
	} `json:"data"`
	Total   int    `json:"total"`
	Active  bool   `json:"active"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// withFailedTask returns sc with the first seed from sc.Seed on whose
// fleet the PVE cluster holds a failed task now and in a minute: the
// history depends on the time of day, and at some hours the 40 tasks a
// node holds have none.
func withFailedTask(t *testing.T, sc sim.Config) sim.Config {
	t.Helper()
	now := time.Now()
	holdsFailed := func(sc sim.Config, at time.Time) bool {
		sc.Now = func() time.Time { return at }
		f, err := sim.New(sc)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, r := range f.Remotes() {
			for _, tk := range f.Held(r.ID) {
				if r.Kind == task.PVE && tk.Class() == task.StatusError {
					return true
				}
			}
		}
		return false
	}
	for range 100 {
		if holdsFailed(sc, now) && holdsFailed(sc, now.Add(time.Minute)) {
			return sc
		}
		sc.Seed++
	}
	t.Fatalf("no seed from %d to %d gives a failed task at %v", sc.Seed-100, sc.Seed-1, now)
	return sc
}

func (rg *webRig) log(upid string) (logAnswer, int) {
	var a logAnswer
	code := rg.getJSON("/api2/json/remotes/tasks/log?limit=0&upid="+url.QueryEscape(upid), &a)
	return a, code
}

func (a logAnswer) text() string {
	var b strings.Builder
	for _, l := range a.Data {
		b.WriteString(l.T + "\n")
	}
	return b.String()
}

// TestTaskLogEndpoint: the log endpoint returns the simulator's log of a
// running and of a finished task, and a failed task's log after the
// simulator has forgotten the task.
func TestTaskLogEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against a simulated fleet for several seconds")
	}
	sc := withFailedTask(t, sim.Config{Seed: 21, PVEClusters: 1, PBSServers: 1, NodesPerCluster: 1, TaskRate: 6, IndexSize: 40, History: 24 * time.Hour})
	rg := newWebRig(t, sc)
	pve := rg.fleet.Remotes()[0]
	for _, r := range rg.fleet.Remotes() {
		if r.Kind == task.PVE {
			pve = r
		}
	}
	// A failed task the daemon saw finish (the backfill): its log is kept.
	failed, _ := rg.list("statusfilter=error&limit=1&remote=" + pve.ID)
	if len(failed) == 0 {
		t.Fatal("the fleet has no failed task")
	}
	before, code := rg.log(failed[0])
	// From the remote, or kept already (the keeper saw it finish in the backfill).
	if code != http.StatusOK || !strings.Contains(before.text(), "TASK ERROR: ") {
		t.Fatalf("failed task's log from the remote: %d %+v", code, before)
	}
	ru, _ := task.ParseRemoteUPID(failed[0])
	rg.eventually(20*time.Second, "failed task's log kept", func() bool {
		m, _ := filepath.Glob(filepath.Join(rg.cache, "tasklogs", "*", ru.Remote, "*.json"))
		return len(m) > 0
	})

	// A running task, then finished.
	u := rg.fleet.StartTask(pve.ID, pve.Endpoints[0].Node, "vzdump", "", 10*time.Minute)
	id := task.RemoteUPID{Remote: pve.ID, UPID: u}.String()
	rg.eventually(10*time.Second, "running task cached", func() bool { l, _ := rg.list("running=1&limit=0"); return strings.Contains(strings.Join(l, " "), id) })
	running, code := rg.log(id)
	if code != http.StatusOK || !running.Active || running.Source != "remote" || !strings.HasPrefix(running.Data[0].T, "INFO: starting new backup job: vzdump ") || strings.Contains(running.text(), "TASK OK") {
		t.Fatalf("running task's log: %d %+v", code, running)
	}
	rg.clock.Advance(11 * time.Minute)
	rg.eventually(10*time.Second, "task finished in the cache", func() bool { l, _ := rg.list("running=1&limit=0"); return !strings.Contains(strings.Join(l, " "), id) })
	finished, _ := rg.log(id)
	if finished.Active || !strings.HasSuffix(finished.text(), "INFO: Backup job finished successfully\nTASK OK\n") || finished.Total != len(finished.Data) {
		t.Errorf("finished task's log: %+v", finished)
	}

	// Two days later the simulator has forgotten the failed task.
	rg.clock.Advance(48 * time.Hour)
	var gone struct{ Data []struct{ T string } }
	rg.getJSON("/api2/json/remotes/tasks/log?upid="+url.QueryEscape(failed[0]), &gone)
	kept, code := rg.log(failed[0])
	if code != http.StatusOK || kept.Source != "cache" || kept.text() != before.text() {
		t.Errorf("forgotten failed task's log: %d source %q, %d lines, want the %d lines from the remote", code, kept.Source, len(kept.Data), len(before.Data))
	}
	// A forgotten task that did not fail was not kept: 404.
	var nf logAnswer
	if code := rg.getJSON("/api2/json/remotes/tasks/log?upid="+url.QueryEscape(id), &nf); code != http.StatusNotFound {
		t.Errorf("forgotten OK task: %d %+v, want 404", code, nf)
	}
}
