package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/internal/fleettest"
	"github.com/taskfleet/taskfleet/sim"
)

// Network says how taskfleet reaches the simulated remotes.
const (
	// NetworkMemory serves the remotes on the in-memory network
	// (internal/memnet): real TLS and HTTP over buffered in-process pipes,
	// no sockets. 10,000 remotes of 3 nodes need no file descriptors.
	NetworkMemory = "memory"
	// NetworkLoopback serves every node on its own 127.x.y.z address over
	// the kernel's TCP: one listening socket per node and two descriptors
	// per connection, so a few thousand nodes at most (RLIMIT_NOFILE).
	NetworkLoopback = "loopback"
)

// FleetConfig is the simulated fleet of the sweep, scale, freshness and
// memory sections: PVE clusters only, low activity, so that a sweep
// measures request scheduling rather than JSON volume.
type FleetConfig struct {
	Remotes         int           `json:"remotes"`
	NodesPerCluster int           `json:"nodes_per_cluster"`
	TaskRate        float64       `json:"task_rate"`  // tasks per node and hour outside the nightly backup
	IndexSize       int           `json:"index_size"` // finished tasks each node keeps
	History         time.Duration `json:"history_ns"` // activity before the start
	Network         string        `json:"network"`
	Seed            int64         `json:"seed"`
	// IdleTimeout is the sim's: 0 the products' (pveproxy closes a
	// connection idle for 5 s), negative never.
	IdleTimeout time.Duration `json:"idle_timeout_ns"`
	// Start is what the fleet's clock shows when the fleet starts; it
	// then runs with the wall clock. Zero: the wall clock itself. The
	// time of day matters: from about 01:00 to 05:00 UTC every node runs
	// its nightly backup (about one running task per node), by day
	// about one node in twenty has a task running, and the running tasks
	// are work for taskfleet on every sweep. Pinning it makes runs at
	// different hours comparable.
	Start time.Time `json:"start"`
	// Now, when set, is the fleet's clock (Start is then ignored).
	Now func() time.Time `json:"-"`
}

// PinnedStart returns the latest instant before now at the given time of
// day (UTC), for FleetConfig.Start.
func PinnedStart(now time.Time, timeOfDay time.Duration) time.Time {
	day := now.UTC().Truncate(24 * time.Hour)
	t := day.Add(timeOfDay)
	if t.After(now) {
		t = t.Add(-24 * time.Hour)
	}
	return t
}

// clock returns the fleet's clock: Now, or the wall clock shifted to
// Start, or nil for the wall clock.
func (c FleetConfig) clock() func() time.Time {
	if c.Now != nil || c.Start.IsZero() {
		return c.Now
	}
	off := c.Start.Sub(time.Now())
	return func() time.Time { return time.Now().Add(off) }
}

// simFleet is a started fleet.
type simFleet struct {
	cfg     FleetConfig
	f       *sim.Fleet
	remotes []sim.Remote
	setup   time.Duration
}

// startFleet creates and starts a fleet; its servers' goroutines carry
// the sim label.
func startFleet(cfg FleetConfig) (*simFleet, error) {
	start := time.Now()
	var (
		f   *sim.Fleet
		err error
	)
	withSide(labelSim, func(context.Context) {
		f, err = sim.New(sim.Config{
			Seed: cfg.Seed, PVEClusters: cfg.Remotes, NodesPerCluster: cfg.NodesPerCluster,
			TaskRate: cfg.TaskRate, IndexSize: cfg.IndexSize, History: cfg.History,
			InMemory: cfg.Network == NetworkMemory, Now: cfg.clock(), IdleTimeout: cfg.IdleTimeout,
		})
		if err == nil {
			err = f.Start()
		}
		if err == nil {
			f.Settle()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("start fleet of %d remotes: %w", cfg.Remotes, err)
	}
	return &simFleet{cfg: cfg, f: f, remotes: f.Remotes(), setup: time.Since(start)}, nil
}

func (s *simFleet) close() { s.f.Close() }

// stats sums the sim's counters over the first n remotes and returns them
// per remote too.
func (s *simFleet) stats(n int) (sum sim.Stats, per []sim.Stats) {
	per = make([]sim.Stats, n)
	for i := range n {
		st := s.f.Stats(s.remotes[i].ID)
		per[i] = st
		sum.Requests += st.Requests
		sum.Connections += st.Connections
		sum.Resumed += st.Resumed
		sum.TasksServed += st.TasksServed
		sum.Errors += st.Errors
	}
	return sum, per
}

// serviceConfig is how the benchmark runs taskfleet against a fleet.
type serviceConfig struct {
	GlobalCap       int           `json:"global_cap"` // polling.max_connections
	RemoteCap       int           `json:"remote_cap"` // polling.max_connections_per_remote
	Tick            time.Duration `json:"tick_ns"`    // polling.tick
	RefreshInterval time.Duration `json:"refresh_ns"` // polling.refresh_interval
}

// startService starts taskfleet for the first n remotes of the fleet, with
// a new cache directory under parent. Its goroutines carry the taskfleet
// label. It returns once every poller exists (Service.Remotes lists them):
// taskfleet.Start returns when the cache is loaded, which can be before the
// supervisor has spawned all pollers, and a refresh sent to a poller not
// spawned yet is lost.
func startService(ctx context.Context, fl *simFleet, n int, sc serviceConfig, parent string) (*taskfleet.Service, string, error) {
	dir, err := os.MkdirTemp(parent, "taskfleet-bench-cache-")
	if err != nil {
		return nil, "", err
	}
	c := config.Default()
	c.Server.CacheDir = dir
	c.Polling.MaxConnections = sc.GlobalCap
	c.Polling.MaxConnectionsPerRemote = sc.RemoteCap
	c.Polling.Tick = sc.Tick
	c.Polling.RefreshInterval = sc.RefreshInterval
	for _, r := range fl.remotes[:n] {
		c.Remotes = append(c.Remotes, fleettest.Remote(r, c.Polling))
	}
	opts := []taskfleet.Option{taskfleet.WithLogger(zerolog.Nop())}
	if fl.cfg.Network == NetworkMemory {
		opts = append(opts, taskfleet.WithDialer(fl.f.DialContext))
	}
	var svc *taskfleet.Service
	withSide(labelTaskfleet, func(context.Context) {
		svc, err = taskfleet.Start(ctx, &c, opts...)
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	for len(svc.Remotes()) < n {
		if err := ctx.Err(); err != nil {
			stopService(svc, dir)
			return nil, "", err
		}
		time.Sleep(time.Millisecond)
	}
	return svc, dir, nil
}

// stopService stops taskfleet and removes its cache directory.
func stopService(svc *taskfleet.Service, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := svc.Stop(ctx)
	os.RemoveAll(dir)
	return err
}
