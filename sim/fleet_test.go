package sim

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/goleak"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/task"
)

// TestLoopbackFleet serves on real loopback sockets: distinct addresses,
// each node its own certificate, a node whose address is taken falls
// back to 127.0.0.1 with a free port.
func TestLoopbackFleet(t *testing.T) {
	// Take the address the first node would get, if nobody else has.
	squat, err := net.Listen("tcp", "127.0.1.1:8006")
	if err == nil {
		defer squat.Close()
	}
	f := newFleet(t, Config{Seed: 60, PVEClusters: 2, PBSServers: 1, History: time.Hour})
	if err := f.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newTestClient(t, f)
	defer c.close()
	remotes := f.Remotes()
	if ids := []string{remotes[0].ID, remotes[1].ID, remotes[2].ID}; !slices.IsSorted(ids) || ids[0] != "pbs001" {
		t.Fatalf("remotes %v, want sorted by id", ids)
	}
	seen := map[string]bool{}
	fps := map[string]bool{}
	for _, r := range remotes {
		for _, e := range r.Endpoints {
			host, port, err := net.SplitHostPort(strings.TrimPrefix(e.URL, "https://"))
			if err != nil || !strings.HasPrefix(host, "127.") || seen[host+":"+port] || fps[e.Fingerprint] {
				t.Fatalf("endpoint %+v: want a distinct loopback address and certificate", e)
			}
			seen[host+":"+port], fps[e.Fingerprint] = true, true
			if r.Kind == task.PBS && host != "127.0.0.1" && port != "8007" || r.Kind == task.PVE && host != "127.0.0.1" && port != "8006" {
				t.Errorf("endpoint %s: want port 8006 (PVE) or 8007 (PBS)", e.URL)
			}
			if r := c.get(r.ID, e.Node, "/api2/json/version"); r.status != 200 {
				t.Errorf("%s: %d", e.URL, r.status)
			}
		}
	}
	if squat != nil {
		if u := remotes[1].Endpoints[0].URL; !strings.HasPrefix(u, "https://127.0.0.1:") {
			t.Errorf("first node at %s although 127.0.1.1:8006 was taken; want the 127.0.0.1 fallback", u)
		}
	}
	// Offline and back on a real socket: refused, then the same address.
	url := remotes[1].Endpoints[1].URL
	f.SetFault("pve-c001", "pve-c001-n2", Fault{Offline: true})
	if _, err := c.do(context.Background(), "pve-c001", "pve-c001-n2", "/api2/json/version", nil); err == nil {
		t.Fatal("offline node answered")
	}
	f.SetFault("pve-c001", "pve-c001-n2", Fault{})
	if f.Remotes()[1].Endpoints[1].URL != url || c.get("pve-c001", "pve-c001-n2", "/api2/json/version").status != 200 {
		t.Fatal("node back online at another address or not answering")
	}
	if err := f.Start(); err == nil {
		t.Error("second Start succeeded")
	}
}

// TestCloseWaitsForEverything closes a loopback fleet while requests hang,
// trickle and wait for their connect latency, and finds no goroutine left.
func TestCloseWaitsForEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f, err := New(Config{Seed: 61, PVEClusters: 1, History: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, f)
	c.get("pve-c001", "pve-c001-n1", "/api2/json/version") // an idle keep-alive connection
	f.SetFault("pve-c001", "pve-c001-n1", Fault{Hang: true})
	f.SetFault("pve-c001", "pve-c001-n2", Fault{Trickle: true})
	f.SetFault("pve-c001", "pve-c001-n3", Fault{ConnectLatency: time.Hour})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, n := range []string{"pve-c001-n1", "pve-c001-n2", "pve-c001-n3"} {
		wg.Go(func() {
			_, err := c.do(context.Background(), "pve-c001", n, listPath, nil)
			errs <- err
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.Stats("pve-c001").Connections < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // wait until all three reached the servers
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a request succeeded although the fleet closed")
		}
	}
	c.close()
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWriteConfig(t *testing.T) {
	f := newFleet(t, Config{Seed: 62, PVEClusters: 2, PBSServers: 1, InMemory: true, History: time.Hour})
	dir := t.TempDir()
	path, err := f.WriteConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Server struct {
			Listen   string `toml:"listen"`
			CacheDir string `toml:"cache_dir"`
		} `toml:"server"`
		Polling struct {
			Tick            string `toml:"tick"`
			RefreshInterval string `toml:"refresh_interval"`
		} `toml:"polling"`
		Remote []struct {
			ID              string `toml:"id"`
			Type            string `toml:"type"`
			TokenID         string `toml:"token_id"`
			TokenSecretFile string `toml:"token_secret_file"`
			Endpoints       []struct {
				URL         string `toml:"url"`
				Fingerprint string `toml:"fingerprint"`
			} `toml:"endpoints"`
		} `toml:"remote"`
	}
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		t.Errorf("unexpected keys %v", un)
	}
	if path != filepath.Join(dir, "taskfleet.toml") || cfg.Server.Listen != "127.0.0.1:8087" || cfg.Server.CacheDir != filepath.Join(dir, "cache") ||
		cfg.Polling.Tick != "10s" || cfg.Polling.RefreshInterval != "10m" {
		t.Errorf("config %s: %+v %+v", path, cfg.Server, cfg.Polling)
	}
	remotes := f.Remotes()
	if len(cfg.Remote) != len(remotes) {
		t.Fatalf("%d remotes in the config, want %d", len(cfg.Remote), len(remotes))
	}
	for i, r := range remotes {
		got := cfg.Remote[i]
		if got.ID != r.ID || got.Type != r.Kind.String() || got.TokenID != r.TokenID || len(got.Endpoints) != len(r.Endpoints) {
			t.Fatalf("remote %d = %+v, want %+v", i, got, r)
		}
		for j, e := range r.Endpoints {
			if got.Endpoints[j].URL != e.URL || got.Endpoints[j].Fingerprint != e.Fingerprint {
				t.Errorf("%s endpoint %d = %+v, want %+v", r.ID, j, got.Endpoints[j], e)
			}
		}
		secret, err := os.ReadFile(got.TokenSecretFile)
		if err != nil || string(secret) != r.TokenSecret {
			t.Errorf("%s secret file: %q, %v", r.ID, secret, err)
		}
		if st, err := os.Stat(got.TokenSecretFile); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s secret file mode: %v, %v", r.ID, st.Mode(), err)
		}
	}
	if config.Quote("a\"b\\c\n") != `"a\"b\\c\u000A"` || formatDuration(90*time.Second) != "90s" || formatDuration(1500*time.Millisecond) != "1.5s" {
		t.Errorf("quoting or duration formatting is off")
	}
}

// TestDaysLongRun polls a fleet every hour for three days of fake time,
// like a poller would (source=all since three hours back, small pages),
// and finds exactly the ground truth: nothing lost, nothing invented,
// every final state right.
func TestDaysLongRun(t *testing.T) {
	realStart := time.Now()
	// Connections stay open: with pveproxy's 5 s idle timeout every poll
	// of the three days would handshake anew, which doubles the real time
	// under the race detector without testing anything more.
	runInBubble(t, Config{Seed: 63, PVEClusters: 3, PBSServers: 1, IdleTimeout: -1}, func(t *testing.T, f *Fleet, c *testClient) {
		expected := map[string]task.Task{}
		for _, r := range f.Remotes() {
			for _, tk := range f.Held(r.ID) {
				expected[taskKey(tk)] = tk
			}
		}
		begin := time.Now().Unix()
		fetched := map[string]task.Task{}
		served := int64(0)
		running := map[string]int64{} // start of the tasks seen running
		poll := func(since int64) {
			for _, st := range running { // a poller asks back to its oldest running task
				since = min(since, st)
			}
			for _, r := range f.Remotes() {
				for _, node := range r.Nodes {
					items := c.fetchAll(r.ID, node, 200, "&since="+strconv.FormatInt(since, 10))
					served += int64(len(items))
					seen := map[string]bool{}
					for _, it := range items {
						if seen[it.UPID] {
							t.Fatalf("%s listed twice in one poll", it.UPID)
						}
						seen[it.UPID] = true
						tk := it.toTask(t, r.ID)
						fetched[taskKey(tk)] = tk
						if tk.Running() {
							running[taskKey(tk)] = tk.UPID.StartTime
						} else {
							delete(running, taskKey(tk))
						}
					}
				}
			}
		}
		poll(0)
		for range 3 * 24 {
			time.Sleep(time.Hour)
			poll(time.Now().Add(-3 * time.Hour).Unix())
		}
		truth := map[string]task.Task{}
		for _, tk := range f.GroundTruth() {
			truth[taskKey(tk)] = tk
			if tk.UPID.StartTime > begin {
				expected[taskKey(tk)] = tk
			}
		}
		for k := range expected {
			got, ok := fetched[k]
			if !ok {
				t.Fatalf("task %s was never fetched", k)
			}
			if want := truth[k]; got != want {
				t.Fatalf("task %s fetched as %+v, truth %+v", k, got, want)
			}
		}
		if len(fetched) != len(expected) {
			t.Fatalf("fetched %d tasks, expected %d", len(fetched), len(expected))
		}
		var total int64
		for _, r := range f.Remotes() {
			total += f.Stats(r.ID).TasksServed
		}
		if total != served {
			t.Errorf("stats count %d tasks served, the client got %d", total, served)
		}
		t.Logf("3 days, 10 nodes: %d tasks (%d produced), %d items served", len(fetched), len(truth), served)
	})
	t.Logf("real time: %v", time.Since(realStart).Round(time.Millisecond))
}

func TestNewRejectsBadConfigs(t *testing.T) {
	for _, cfg := range []Config{{PVEClusters: -1}, {NodesPerCluster: maxNodes + 1, PVEClusters: 1}, {TaskRate: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	f := newFleet(t, Config{})
	if len(f.Remotes()) != 0 || len(f.GroundTruth()) != 0 || f.Held("x") != nil || f.Stats("x") != (Stats{}) {
		t.Error("an empty fleet is not empty")
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	f.SetFault("nope", "", Fault{Offline: true}) // ignored
	if _, err := f.DialContext(context.Background(), "tcp", "127.0.0.1:1"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialing a closed loopback port: %v, want connection refused", err)
	}
}

// TestSettle: Settle generates every node's history up to now and the
// clusters' guests, which a fleet otherwise does on a node's first
// request, and changes nothing the remotes hold.
func TestSettle(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	cfg := Config{Seed: 7, PVEClusters: 2, PBSServers: 1, InMemory: true, Now: func() time.Time { return at }}
	settled, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	settled.Settle()
	for _, n := range settled.allNodes() {
		if n.act.frontier != at.Unix() {
			t.Errorf("%s: history up to %d after Settle, want %d", n.name, n.act.frontier, at.Unix())
		}
		if n.remote.kind == task.PVE && n.act.p.gt.list == nil {
			t.Errorf("%s: no guests after Settle", n.name)
		}
	}
	for _, n := range lazy.allNodes() {
		if n.act.frontier == at.Unix() {
			t.Fatalf("%s: history generated without Settle: the test shows nothing", n.name)
		}
	}
	for _, r := range settled.Remotes() {
		if got, want := settled.Held(r.ID), lazy.Held(r.ID); !reflect.DeepEqual(got, want) || len(got) == 0 {
			t.Errorf("%s: settled fleet holds %d tasks, lazy one %d, or they differ", r.ID, len(got), len(want))
		}
	}
}
