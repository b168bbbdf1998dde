// Package fleettest connects taskfleet to a simulated fleet in tests and
// benchmarks: a configuration for the fleet's remotes and a comparison of
// cached tasks with the fleet's ground truth.
package fleettest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// Config returns a configuration polling every remote of f, with the cache
// in cacheDir and config.Default()'s polling settings.
func Config(f *sim.Fleet, cacheDir string) *config.Config {
	c := config.Default()
	c.Server.CacheDir = cacheDir
	for _, r := range f.Remotes() {
		c.Remotes = append(c.Remotes, Remote(r, c.Polling))
	}
	return &c
}

// Remote returns the configuration of one simulated remote.
func Remote(r sim.Remote, p config.Polling) config.Remote {
	cr := config.Remote{
		ID:             r.ID,
		Type:           r.Kind,
		TokenID:        r.TokenID,
		TokenSecret:    config.Secret(r.TokenSecret),
		MaxConnections: p.MaxConnectionsPerRemote,
	}
	if r.Kind == task.PBS {
		cr.MaxConnections = 1
	}
	for _, e := range r.Endpoints {
		cr.Endpoints = append(cr.Endpoints, config.Endpoint{URL: e.URL, Fingerprint: e.Fingerprint})
	}
	return cr
}

// Check compares the cached tasks got with the fleet: every task the fleet
// still holds (held) must be cached once with its current state; a cached
// task the fleet no longer holds must at least exist in the ground truth
// (truth), since the cache keeps history that fell off a remote's index.
// It describes up to ten differences ("" when all is well).
func Check(got, held, truth []task.Task) string {
	key := func(t task.Task) string { return t.RemoteUPID().String() }
	index := func(ts []task.Task) map[string]task.Task {
		m := make(map[string]task.Task, len(ts))
		for _, t := range ts {
			m[key(t)] = t
		}
		return m
	}
	h, all := index(held), index(truth)
	var out []string
	seen := make(map[string]bool, len(got))
	for _, t := range got {
		k := key(t)
		if seen[k] {
			out = append(out, "duplicate "+k)
			continue
		}
		seen[k] = true
		if wt, ok := h[k]; ok {
			if wt.EndTime != t.EndTime || wt.Status != t.Status {
				out = append(out, fmt.Sprintf("%s: got end %d status %q, want end %d status %q", k, t.EndTime, t.Status, wt.EndTime, wt.Status))
			}
		} else if _, ok := all[k]; !ok {
			out = append(out, "unexpected "+k)
		}
	}
	for _, t := range held {
		if !seen[key(t)] {
			out = append(out, "missing "+key(t))
		}
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	n := len(out)
	if n > 10 {
		out = append(out[:10], "...")
	}
	return fmt.Sprintf("%d differences:\n  %s", n, strings.Join(out, "\n  "))
}

// Since returns the tasks of ts that started at or after t.
func Since(ts []task.Task, t time.Time) []task.Task {
	var out []task.Task
	for _, x := range ts {
		if x.UPID.StartTime >= t.Unix() {
			out = append(out, x)
		}
	}
	return out
}
