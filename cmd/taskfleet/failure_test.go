package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/sim"
)

// TestServeExitsWhenTheTreeDies runs the daemon as serve does and ends
// its service's actor tree from outside (its supervisor stopped without
// Stop, as a failed root strategy or a host would): the daemon exits with
// status 1 within a second of the tree's end and logs the cause; /readyz
// of a backend whose service died answers 503 naming the cause.
func TestServeExitsWhenTheTreeDies(t *testing.T) {
	t.Parallel()
	fleet := newFleet(t, sim.Config{Seed: 4, PVEClusters: 1, PBSServers: 1, History: 24 * time.Hour, IndexSize: 100})
	path := writeConfig(t, fleet, t.TempDir(), anyPort, tokensTOML)
	var logs syncBuffer
	log := zerolog.New(&logs)
	cfg, err := loadConfig(log, path)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listenAPI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemon(path, cfg, ln, log)
	services := make(chan *taskfleet.Service, 1)
	d.started = func(s *taskfleet.Service) { services <- s }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var g run.Group
	g.Add(termination(ctx))
	d.addTo(&g)
	exited := make(chan int, 1)
	go func() { exited <- d.wait(&g) }()

	var svc *taskfleet.Service
	select {
	case svc = <-services:
	case code := <-exited:
		t.Fatalf("daemon exited with %d before serving:\n%s", code, logs.String())
	case <-time.After(time.Minute):
		t.Fatal("service not started within a minute")
	}
	svc.ActorSystem().Root.Stop(svc.PID())
	<-svc.Done()
	died := time.Now()
	select {
	case code := <-exited:
		if code != exitFailure {
			t.Errorf("daemon exited with %d after its service died, want %d", code, exitFailure)
		}
		if d := time.Since(died); d > time.Second {
			t.Errorf("daemon exited %v after its service died, want within 1 s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon still running 10 s after its service died")
	}
	if out := logs.String(); !strings.Contains(out, "service failed") || !strings.Contains(out, "stopped without Service.Stop") {
		t.Errorf("no failure with its cause in the logs:\n%s", tail(out, 2000))
	}

	// /readyz of a backend whose service has died: 503 with the cause.
	b := newBackend(path, cfg, ln.Addr(), log)
	b.setService(svc)
	h := api.New(b, api.Options{Logger: log})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "stopped without Service.Stop") {
		t.Errorf("/readyz = %d %q, want 503 naming the cause", rec.Code, rec.Body.String())
	}
	t.Logf("/readyz: %d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
}

// TestServeExitsNonZeroAfterUncleanStop makes the service's final merge
// fail (the state file's path is a directory) and stops the daemon: the
// stop is logged as failed and the exit status is 1.
func TestServeExitsNonZeroAfterUncleanStop(t *testing.T) {
	t.Parallel()
	fleet := newFleet(t, sim.Config{Seed: 5, PVEClusters: 1, History: 24 * time.Hour, IndexSize: 100})
	path := writeConfig(t, fleet, t.TempDir(), anyPort, tokensTOML)
	var logs syncBuffer
	log := zerolog.New(&logs)
	cfg, err := loadConfig(log, path)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listenAPI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemon(path, cfg, ln, log)
	services := make(chan *taskfleet.Service, 1)
	d.started = func(s *taskfleet.Service) { services <- s }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var g run.Group
	g.Add(termination(ctx))
	d.addTo(&g)
	exited := make(chan int, 1)
	go func() { exited <- d.wait(&g) }()
	svc := <-services
	// Something to merge at the stop, and a merge that cannot finish.
	r := fleet.Remotes()[0]
	upid := fleet.StartTask(r.ID, r.Nodes[0], "qmstart", "100", time.Hour)
	if err := svc.Track(ctx, r.ID, upid); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(cfg.Server.CacheDir, cache.StateFile)
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, "blocker"), 0o750); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case code := <-exited:
		if code != exitFailure {
			t.Errorf("exit status %d after an unclean stop, want %d", code, exitFailure)
		}
	case <-time.After(time.Minute):
		t.Fatal("daemon still running a minute after its context ended")
	}
	if out := logs.String(); !strings.Contains(out, "service stop failed") || !strings.Contains(out, "close cache") {
		t.Errorf("no failed stop with its cause in the logs:\n%s", tail(out, 2000))
	}
}
