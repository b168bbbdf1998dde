package sim

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse runs clients against the fleet while faults switch,
// nodes come and go and tests read the ground truth, all at once: no
// race, no deadlock (the bubble would report it), no panic, no leak.
func TestConcurrentUse(t *testing.T) {
	runInBubble(t, Config{Seed: 70, PVEClusters: 2, PBSServers: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		paths := []string{"/api2/json/nodes", "/api2/json/cluster/tasks", "/api2/json/cluster/status",
			"/api2/json/nodes/localhost/tasks?source=all&limit=20", "/api2/json/nodes/pve-c001-n2/tasks?limit=5"}
		for i := range 6 {
			wg.Go(func() {
				for j := 0; ctx.Err() == nil; j++ {
					remote := []string{"pve-c001", "pve-c002", "pbs001"}[(i+j)%3]
					rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
					c.do(rctx, remote, "", paths[j%len(paths)], nil)
					rcancel()
					time.Sleep(100 * time.Millisecond) // lets the bubble's clock move
				}
			})
		}
		wg.Go(func() {
			faults := []Fault{{Offline: true}, {Latency: time.Second}, {WrongCert: true}, {Status: 500}, {Trickle: true}, {Hang: true}, {}}
			for j := 0; ctx.Err() == nil; j++ {
				f.SetFault("pve-c001", fmt.Sprintf("pve-c001-n%d", 1+j%3), faults[j%len(faults)])
				f.SetFault("pbs001", "", faults[(j+3)%len(faults)])
				if name, err := f.AddNode("pve-c002"); err == nil && j%2 == 0 {
					f.RemoveNode("pve-c002", name)
				}
				c.refresh()
				time.Sleep(700 * time.Millisecond)
			}
		})
		wg.Go(func() {
			for ctx.Err() == nil {
				f.GroundTruth()
				f.Held("pve-c001")
				f.Stats("pbs001")
				f.StartTask("pve-c002", "pve-c002-n1", "qmstart", "201", time.Minute)
				time.Sleep(3 * time.Second)
			}
		})
		time.Sleep(20 * time.Second)
		cancel()
		wg.Wait()
		if n := f.panics.Load(); n != 0 {
			t.Fatalf("%d handler panics", n)
		}
		if f.Stats("pve-c001").Requests == 0 || f.Stats("pbs001").Requests == 0 {
			t.Fatal("no request reached the servers")
		}
	})
}
