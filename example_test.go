package taskfleet_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// Example embeds taskfleet in a server that already runs a protoactor
// actor system, polls a (simulated) PVE cluster and a PBS, and asks for
// the failed backups.
func Example() {
	// A simulated fleet stands in for real remotes; its clock stands still
	// (at the time the example runs: taskfleet keeps the last seven days of
	// the real clock) so that the output is stable.
	frozen := time.Now()
	fleet, err := sim.New(sim.Config{Seed: 1, PVEClusters: 1, PBSServers: 1, Now: func() time.Time { return frozen }})
	if err != nil {
		log.Fatal(err)
	}
	if err := fleet.Start(); err != nil {
		log.Fatal(err)
	}
	defer fleet.Close()

	dir, err := os.MkdirTemp("", "taskfleet-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The configuration a taskfleet.toml would give.
	cfg := config.Default()
	cfg.Server.CacheDir = dir
	for _, r := range fleet.Remotes() {
		remote := config.Remote{ID: r.ID, Type: r.Kind, TokenID: r.TokenID, TokenSecret: config.Secret(r.TokenSecret), MaxConnections: 2}
		for _, e := range r.Endpoints {
			remote.Endpoints = append(remote.Endpoints, config.Endpoint{URL: e.URL, Fingerprint: e.Fingerprint})
		}
		cfg.Remotes = append(cfg.Remotes, remote)
	}

	// The host's actor system; taskfleet spawns its tree under "tasks".
	system := actor.NewActorSystem()
	ctx := context.Background()
	svc, err := taskfleet.Start(ctx, &cfg, taskfleet.WithActorSystem(system, "tasks"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)

	// Polling runs in the background; a caller may ask for a refresh now.
	results, err := svc.Refresh(ctx, true)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		if r.Err != nil {
			fmt.Println(r.Remote, "refresh failed:", r.Err)
		}
	}
	page, err := svc.Tasks(task.Filter{TypeFilter: "backup", Errors: true, Limit: 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("failed backups found:", page.Total > 0, "- shown:", len(page.Tasks))
	for _, h := range svc.Remotes() {
		fmt.Println(h.Remote, h.State)
	}
	// Output:
	// failed backups found: true - shown: 3
	// pbs001 up
	// pve-c001 up
}
