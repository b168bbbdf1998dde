package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/sim"
)

// TestSecondServeOnSameCacheDir starts a daemon and then a second one with
// another listen address and the same cache directory: the second exits
// non-zero with a message naming the directory and the first one's pid,
// and the first keeps serving.
func TestSecondServeOnSameCacheDir(t *testing.T) {
	t.Parallel()
	fleet := newFleet(t, sim.Config{Seed: 3, PVEClusters: 1, NodesPerCluster: 1, History: time.Hour, TaskRate: 5, IndexSize: 50})
	dir := t.TempDir()
	first := start(t, "serve", "--config", writeConfig(t, fleet, dir, anyPort, ""))
	c := &apiClient{t: t, base: first.apiURL()}
	c.waitReady(first)

	cacheDir := filepath.Join(dir, "cache")
	path, err := fleet.WriteDaemonConfig(t.TempDir(), sim.DaemonOptions{Listen: anyPort, CacheDir: cacheDir, Tick: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	second := start(t, "serve", "--config", path)
	if code := second.wait(30 * time.Second); code == 0 {
		t.Fatalf("second daemon on %s exited 0; stderr:\n%s", cacheDir, tail(second.stderr.String(), 4000))
	}
	msg := second.stderr.String()
	pid := strconv.Itoa(first.cmd.Process.Pid)
	if !strings.Contains(msg, cacheDir) || !strings.Contains(msg, "process "+pid) {
		t.Fatalf("second daemon's message does not name the cache directory %s and the holder's pid %s:\n%s", cacheDir, pid, tail(msg, 4000))
	}
	if !first.running() {
		t.Fatal("first daemon stopped")
	}
	c.waitReady(first)
}
