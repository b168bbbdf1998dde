package taskfleet_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/internal/fleettest"
	"github.com/taskfleet/taskfleet/sim"
)

// TestStartReportsUnusableCache checks that Start fails with the cache's
// error instead of waiting for a cache that cannot be opened.
func TestStartReportsUnusableCache(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Server.CacheDir = filepath.Join(file, "cache")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	svc, err := taskfleet.Start(ctx, &cfg)
	if err == nil {
		svc.Stop(ctx)
		t.Fatal("Start succeeded on a cache dir below a file")
	}
	if ctx.Err() != nil || !strings.Contains(err.Error(), "cache") {
		t.Errorf("Start = %v, want the cache's error before the deadline", err)
	}
}

// TestSpawnUnderHostActor spawns taskfleet as the child of a host actor
// (taskfleet.Spawn from the host's Receive): the supervisor is the host's
// child, the service loads and answers, and when the host stops, the tree
// stops with it: Done closes, Err says it was stopped without Stop, and
// Ready is false.
func TestSpawnUnderHostActor(t *testing.T) {
	fleet, err := sim.New(sim.Config{Seed: 2, PVEClusters: 1, History: 24 * time.Hour, IndexSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Start(); err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	cfg := fleettest.Config(fleet, t.TempDir())

	system := actor.NewActorSystem(actor.WithLoggerFactory(actors.LoggerFactory(zerolog.Nop(), slog.LevelError)))
	spawned := make(chan *taskfleet.Service, 1)
	host := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			svc, err := taskfleet.Spawn(c, "tasks", cfg)
			if err != nil {
				t.Error(err)
			}
			spawned <- svc
		}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(3, time.Minute, actor.DefaultDecider))))
	svc := <-spawned
	if svc == nil {
		t.FailNow()
	}
	if want := host.Id + "/tasks"; svc.PID().Id != want {
		t.Errorf("supervisor PID %s, want %s", svc.PID().Id, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := svc.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := svc.Refresh(ctx, true); err != nil || res[0].Err != nil {
		t.Fatalf("refresh: %v %v", res, err)
	}
	if err := system.Root.StopFuture(host).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Done():
	case <-ctx.Done():
		t.Fatal("tree still running after its host stopped")
	}
	if err := svc.Err(); err == nil || !strings.Contains(err.Error(), "stopped without Service.Stop") {
		t.Errorf("Err() = %v", err)
	}
	if svc.Ready() {
		t.Error("Ready after the tree ended")
	}
	// Stop waits for the service's own goroutines (the keepers still
	// writing to the cache directory) and says how the tree ended.
	if err := svc.Stop(ctx); err == nil || !strings.Contains(err.Error(), "stopped without Service.Stop") {
		t.Errorf("Stop after the tree ended = %v", err)
	}
}
