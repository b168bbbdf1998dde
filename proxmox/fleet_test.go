package proxmox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/internal/fleettest"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// newFleetClient returns a client for a simulated remote.
func newFleetClient(t *testing.T, f *sim.Fleet, r sim.Remote, pageSize int) *proxmox.Client {
	t.Helper()
	cfg := proxmox.Config{
		Remote: r.ID, Kind: r.Kind, TokenID: r.TokenID, TokenSecret: r.TokenSecret,
		PageSize: pageSize, DialContext: f.DialContext, RequestTimeout: 5 * time.Second,
	}
	for _, e := range r.Endpoints {
		cfg.Endpoints = append(cfg.Endpoints, proxmox.Endpoint{URL: e.URL, Fingerprint: e.Fingerprint})
	}
	c, err := proxmox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestFleetFetchIsComplete fetches seven days from 200 simulated remotes
// with small pages while every request takes a second of the fleet's
// clock, so new tasks start and running ones finish between pages. Every
// task the fleet held when the fetch started must come back exactly once,
// with its final state if it had finished by then.
func TestFleetFetchIsComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("200 remotes")
	}
	synctest.Test(t, func(t *testing.T) {
		f, err := sim.New(sim.Config{Seed: 2, PVEClusters: 170, PBSServers: 30, TaskRate: 10, IndexSize: 120, History: 7 * 24 * time.Hour, InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.SetFaultAll(sim.Fault{Latency: time.Second})

		since := time.Now().Add(-7 * 24 * time.Hour).Unix()
		var before []task.Task
		for _, r := range f.Remotes() {
			before = append(before, f.Held(r.ID)...)
		}
		var (
			mu      sync.Mutex
			got     []task.Task
			pages   int
			failErr error
		)
		var wg sync.WaitGroup
		for _, r := range f.Remotes() {
			wg.Go(func() {
				c := newFleetClient(t, f, r, 15)
				nodes, err := c.Nodes(context.Background())
				if err != nil {
					mu.Lock()
					failErr = errors.Join(failErr, err)
					mu.Unlock()
					return
				}
				for _, n := range nodes {
					res, err := c.FetchTasks(context.Background(), n.Name, since)
					mu.Lock()
					failErr = errors.Join(failErr, err)
					got = append(got, res.Tasks...)
					pages += res.Requests
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if failErr != nil {
			t.Fatal(failErr)
		}
		t.Logf("%d tasks in %d pages; fleet held %d when the fetch started", len(got), pages, len(before))

		// Every task held from the start to the end of the fetch is
		// there once, with its final state if it had finished at the
		// start; tasks that fell off a node's index meanwhile are gone
		// for good, as on a real node.
		var after []task.Task
		for _, r := range f.Remotes() {
			after = append(after, f.Held(r.ID)...)
		}
		kept := stillHeld(before, after)
		if d := fleettest.Check(got, finished(kept), f.GroundTruth()); d != "" {
			t.Error(d)
		}
		if len(kept) < len(before)*9/10 {
			t.Errorf("only %d of %d tasks were still held at the end: the test lost its point", len(kept), len(before))
		}
	})
}

// finished returns the finished tasks of ts.
func finished(ts []task.Task) []task.Task {
	var out []task.Task
	for _, t := range ts {
		if !t.Running() {
			out = append(out, t)
		}
	}
	return out
}

// stillHeld returns the tasks of before that are also in after.
func stillHeld(before, after []task.Task) []task.Task {
	in := map[string]bool{}
	for _, t := range after {
		in[t.RemoteUPID().String()] = true
	}
	var out []task.Task
	for _, t := range before {
		if in[t.RemoteUPID().String()] {
			out = append(out, t)
		}
	}
	return out
}

// TestFleetCutoffSecond fetches from a cutoff second that several tasks
// share: "since" is inclusive, so all of them come back.
func TestFleetCutoffSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, err := sim.New(sim.Config{Seed: 4, PVEClusters: 1, PBSServers: 1, InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, r := range f.Remotes() {
			node := r.Nodes[0]
			var same []task.UPID
			for i := range 4 {
				same = append(same, f.StartTask(r.ID, node, "qmstart", string(rune('1'+i))+"00", time.Second))
			}
			time.Sleep(5 * time.Second)
			c := newFleetClient(t, f, r, 2)
			list := node
			if r.Kind == task.PBS {
				list = "localhost"
			}
			res, err := c.FetchTasks(context.Background(), list, same[0].StartTime)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range same {
				if u.StartTime != same[0].StartTime {
					t.Fatalf("tasks did not share a second: %v", same)
				}
				n := 0
				for _, x := range res.Tasks {
					if x.UPID == u {
						n++
						if x.Running() {
							t.Errorf("%s still running", u)
						}
					}
				}
				if n != 1 {
					t.Errorf("%s: fetched %d times from its own second, want once", u, n)
				}
			}
		}
	})
}

// TestFleetFaults checks that each fault injected in the simulator comes
// back as its classified error within the request timeout.
func TestFleetFaults(t *testing.T) {
	cases := []struct {
		name  string
		fault sim.Fault
		as    func(error) bool
	}{
		{name: "hang", fault: sim.Fault{Hang: true}, as: isErr[*proxmox.TimeoutError]},
		{name: "500", fault: sim.Fault{Status: 500}, as: isErr[*proxmox.ServerError]},
		{name: "401", fault: sim.Fault{Status: 401}, as: isErr[*proxmox.AuthError]},
		{name: "595", fault: sim.Fault{Status: 595}, as: isErr[*proxmox.NodeOfflineError]},
		{name: "malformed", fault: sim.Fault{Malformed: true}, as: isErr[*proxmox.MalformedError]},
		{name: "truncated", fault: sim.Fault{Truncated: true}, as: func(err error) bool {
			return isErr[*proxmox.MalformedError](err) || isErr[*proxmox.UnreachableError](err)
		}},
		{name: "oversized", fault: sim.Fault{Oversized: true}, as: isErr[*proxmox.BodyTooLargeError]},
		{name: "trickle", fault: sim.Fault{Trickle: true}, as: isErr[*proxmox.TimeoutError]},
		{name: "wrong cert", fault: sim.Fault{WrongCert: true}, as: isErr[*proxmox.CertMismatchError]},
		{name: "offline", fault: sim.Fault{Offline: true}, as: isErr[*proxmox.UnreachableError]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, err := sim.New(sim.Config{Seed: 6, PBSServers: 1, InMemory: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Start(); err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				r := f.Remotes()[0]
				cfg := proxmox.Config{
					Remote: r.ID, Kind: r.Kind, TokenID: r.TokenID, TokenSecret: r.TokenSecret,
					DialContext: f.DialContext, RequestTimeout: 5 * time.Second, MaxBodyBytes: 1 << 20,
					Endpoints: []proxmox.Endpoint{{URL: r.Endpoints[0].URL, Fingerprint: r.Endpoints[0].Fingerprint}},
				}
				c, err := proxmox.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				f.SetFault(r.ID, "", tc.fault)
				start := time.Now()
				_, err = c.FetchTasks(context.Background(), "localhost", 0)
				if took := time.Since(start); took > cfg.RequestTimeout+time.Second {
					t.Errorf("error after %v, more than the %v timeout", took, cfg.RequestTimeout)
				}
				if err == nil || !tc.as(err) {
					t.Fatalf("error = %v (%T), want the %s class", err, err, tc.name)
				}
				if kind := proxmox.ErrorKind(err); kind == "other" {
					t.Errorf("ErrorKind = other for %v", err)
				}
				f.SetFault(r.ID, "", sim.Fault{})
			})
		})
	}
}

func isErr[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}
