package actors

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/sim"
)

var (
	soak       = flag.Bool("soak", false, "run the chaos soak for -soak.length (a virtual day) instead of a virtual hour")
	soakLength = flag.Duration("soak.length", 24*time.Hour, "virtual length of the chaos soak with -soak")
)

// Margins of the chaos soak's end state against the baseline taken after
// the backfill: goroutines at most chaosGoroutineFactor × baseline +
// chaosGoroutineSlack (connections of restarted clients may still be
// closing), heap at most chaosHeapFactor × baseline + chaosHeapSlack (the
// cache holds the tasks the fleet started meanwhile).
const (
	chaosGoroutineFactor = 1.5
	chaosGoroutineSlack  = 20
	chaosHeapFactor      = 2
	chaosHeapSlack       = 32 << 20
)

// An injector is one kind of fault of the chaos soak. setup (optional)
// installs hooks in the Options before Start; inject is called when the
// soak picks the injector and returns the name of what it did ("" when
// nothing applied now), which the soak counts; heal (optional) undoes
// lasting faults before the final checks.
//
// Injectors are registered with registerInjector, usually from an init
// function in their own file (chaos_NAME_test.go), so that new fault
// kinds (goroutine panics, bogus track requests, disk errors) join the
// soak without editing it. An injector that needs a hook the Options do
// not have adds a test knob to Options and Env, and sets it in setup
// (chain it: another injector may have set it already).
type injector struct {
	name   string
	weight int // relative frequency; 0 means 1
	setup  func(c *chaos, o *Options)
	inject func(c *chaos) string
	heal   func(c *chaos)
}

var (
	injectorsMu sync.Mutex
	injectors   []injector
)

// registerInjector adds an injector to every chaos soak.
func registerInjector(in injector) {
	injectorsMu.Lock()
	defer injectorsMu.Unlock()
	injectors = append(injectors, in)
}

// chaos is the soak's state, shared with the injectors.
type chaos struct {
	t    *testing.T
	h    *harness
	rng  *rand.Rand
	log  logBuffer
	full []config.Remote // every remote of the fleet, as first configured

	mu     sync.Mutex
	counts map[string]int

	// Armed panics, counted by the hooks when they fire.
	supervisor, poller, writer panicker
	lastSupervisorBurst        time.Time

	// Remote faults in place and when they end.
	faults map[string]time.Time // "remote/node" → end

	// The configured remotes and, for removed ones, their request count
	// one tick after the removal.
	cfg     *config.Config
	removed map[string]int64
}

func (c *chaos) count(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[what]++
}

// reload applies cfg and records it as the configuration in force.
func (c *chaos) reload(cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, removed, _, err := c.h.sys.Reload(ctx, cfg)
	if err != nil {
		return err
	}
	c.cfg = cfg
	for _, id := range removed {
		// A removal ends the remote's state: the log checker starts
		// afresh with it.
		fmt.Fprintf(&c.log, "{\"remote\":%q,\"message\":\"chaos: remote removed\"}\n", id)
	}
	// The removed remotes' baseline: one tick after the removal.
	time.Sleep(cfg.Polling.Tick)
	synctest.Wait()
	for _, id := range removed {
		c.removed[id] = requests(c.h, id)
	}
	return nil
}

// readd checks a removed remote got no request since its removal and
// forgets it.
func (c *chaos) readd(id string) {
	if n := requests(c.h, id) - c.removed[id]; n != 0 {
		c.t.Errorf("removed remote %s got %d requests after the tick of its removal", id, n)
	}
	delete(c.removed, id)
}

func init() {
	registerInjector(injector{
		name:   "supervisor panic burst",
		weight: 1,
		setup: func(c *chaos, o *Options) {
			o.supervisorHook = func(msg any) {
				if _, ok := msg.(*messages.Tick); ok {
					c.supervisor.maybe(msg, "chaos: supervisor panic")
				}
			}
		},
		inject: func(c *chaos) string {
			// A burst past protoactor's default (10 restarts in 10 s), and
			// within taskfleet's documented limit: bursts are further apart
			// than RootQuietPeriod.
			if c.supervisor.armed.Load() > 0 || time.Since(c.lastSupervisorBurst) < RootQuietPeriod+time.Hour {
				return ""
			}
			c.lastSupervisorBurst = time.Now()
			n := 11 + c.rng.IntN(4)
			c.supervisor.arm(int64(n))
			return fmt.Sprintf("supervisor panic burst (%d panics)", n)
		},
		heal: func(c *chaos) { c.supervisor.arm(0) },
	})
	registerInjector(injector{
		name:   "poller panic",
		weight: 4,
		setup: func(c *chaos, o *Options) {
			o.pollerHook = func(_ string, msg any) {
				switch msg.(type) {
				case *messages.FetchFinished, *messages.PollRemote, *messages.BatchApplied:
					c.poller.maybe(msg, "chaos: poller panic")
				}
			}
		},
		inject: func(c *chaos) string {
			c.poller.arm(c.poller.armed.Load() + 1)
			return "poller panic"
		},
		heal: func(c *chaos) { c.poller.arm(0) },
	})
	registerInjector(injector{
		name:   "writer panic",
		weight: 2,
		setup: func(c *chaos, o *Options) {
			o.writerHook = func(msg any, applied bool) {
				if _, ok := msg.(*messages.ApplyBatch); ok {
					// Before the apply (the batch is lost in flight) or
					// after it (its acknowledgement is lost).
					c.writer.maybe(msg, fmt.Sprintf("chaos: writer panic (applied %v)", applied))
				}
			}
		},
		inject: func(c *chaos) string {
			c.writer.arm(c.writer.armed.Load() + 1)
			return "writer panic"
		},
		heal: func(c *chaos) { c.writer.arm(0) },
	})
	remoteFault := func(kind string, f sim.Fault) injector {
		return injector{
			name:   "remote " + kind,
			weight: 2,
			inject: func(c *chaos) string {
				r := c.h.fleet.Remotes()[c.rng.IntN(len(c.h.fleet.Remotes()))]
				node := ""
				if c.rng.IntN(2) == 0 {
					node = r.Nodes[c.rng.IntN(len(r.Nodes))]
				}
				key := r.ID + "/" + node
				if _, busy := c.faults[key]; busy {
					return ""
				}
				c.h.fleet.SetFault(r.ID, node, f)
				c.faults[key] = time.Now().Add(time.Duration(1+c.rng.IntN(20)) * time.Minute)
				return "remote " + kind
			},
		}
	}
	registerInjector(remoteFault("hanging", sim.Fault{Hang: true}))
	registerInjector(remoteFault("500", sim.Fault{Status: 500}))
	registerInjector(remoteFault("401", sim.Fault{Status: 401}))
	registerInjector(remoteFault("reset", sim.Fault{Offline: true}))
	registerInjector(remoteFault("truncated", sim.Fault{Truncated: true}))
	registerInjector(injector{
		name:   "reload",
		weight: 3,
		inject: func(c *chaos) string {
			next := *c.cfg
			next.Remotes = slices.Clone(c.cfg.Remotes)
			var what string
			switch op := c.rng.IntN(3); {
			case op == 0 && len(c.removed) > 0: // add a removed remote back
				ids := slices.Sorted(maps.Keys(c.removed))
				id := ids[c.rng.IntN(len(ids))]
				c.readd(id)
				for _, r := range c.full {
					if r.ID == id {
						next.Remotes = append(next.Remotes, r)
					}
				}
				what = "reload: add a remote"
			case op == 1 && len(next.Remotes) > 2: // remove one
				i := c.rng.IntN(len(next.Remotes))
				next.Remotes = slices.Delete(next.Remotes, i, i+1)
				what = "reload: remove a remote"
			default: // change one (its connection cap)
				i := c.rng.IntN(len(next.Remotes))
				next.Remotes[i].MaxConnections = 1 + c.rng.IntN(4)
				what = "reload: change a remote"
			}
			if err := c.reload(&next); err != nil {
				c.t.Errorf("%s: %v", what, err)
			}
			return what
		},
	})
}

// TestChaosSoak runs the fleet for a virtual hour (a virtual day with
// -soak) while injecting, at random, panics in every actor kind (the
// supervisor in bursts past protoactor's default, pollers, the writer),
// remotes that hang, answer 500 or 401, reset or truncate, and reloads
// that add, remove and change remotes. At the end: the service is alive,
// the cache equals the fleet's ground truth, removed remotes got no
// request after the tick of their removal, goroutines and heap are within
// the stated margins of the baseline, and no remote's state is logged
// twice in a row.
func TestChaosSoak(t *testing.T) {
	length := time.Hour
	if *soak {
		length = *soakLength
	}
	// The real clock, read from outside the bubble, for progress reports.
	realClock, stopClock := make(chan time.Time), make(chan struct{})
	defer close(stopClock)
	go func() {
		for {
			select {
			case realClock <- time.Now():
			case <-stopClock:
				return
			}
		}
	}()
	realNow := func() time.Time { return <-realClock }
	synctest.Test(t, func(t *testing.T) {
		c := &chaos{
			t:       t,
			rng:     rand.New(rand.NewPCG(9, 9)),
			counts:  map[string]int{},
			faults:  map[string]time.Time{},
			removed: map[string]int64{},
		}
		opts := Options{
			Logger:      zerolog.New(&c.log).Level(zerolog.InfoLevel),
			restartBase: 100 * time.Millisecond,
			restartMax:  10 * time.Second,
			applyLimit:  time.Minute,
		}
		injectorsMu.Lock()
		all := slices.Clone(injectors)
		injectorsMu.Unlock()
		for _, in := range all {
			if in.setup != nil {
				in.setup(c, &opts)
			}
		}
		c.h = newHarness(t, sim.Config{Seed: 99, PVEClusters: 5, PBSServers: 2, TaskRate: 3, IndexSize: 300}, opts)
		c.full = slices.Clone(c.h.cfg.Remotes)
		c.cfg = c.h.cfg
		c.h.start()
		time.Sleep(time.Minute) // backfill
		synctest.Wait()
		goroutines, heap := usage()

		var bag []injector // weighted
		for _, in := range all {
			for range max(in.weight, 1) {
				bag = append(bag, in)
			}
		}
		end := time.Now().Add(length)
		began, nextReport := time.Now(), time.Now().Add(time.Hour)
		realStart := realNow()
		for time.Now().Before(end) {
			if time.Now().After(nextReport) {
				t.Logf("virtual %v after %v real; writer failure: %v; %d log lines", time.Since(began).Round(time.Minute), realNow().Sub(realStart).Round(time.Second), c.h.sys.WriterFailure(), strings.Count(c.log.String(), "\n"))
				nextReport = nextReport.Add(time.Hour)
				if os.Getenv("CHAOS_LOG") != "" {
					os.WriteFile(os.Getenv("CHAOS_LOG"), []byte(c.log.String()), 0o644)
				}
			}
			time.Sleep(time.Duration(30+c.rng.IntN(150)) * time.Second)
			synctest.Wait()
			for key, until := range c.faults {
				if time.Now().After(until) {
					id, node, _ := strings.Cut(key, "/")
					c.h.fleet.SetFault(id, node, sim.Fault{})
					delete(c.faults, key)
				}
			}
			in := bag[c.rng.IntN(len(bag))]
			if what := in.inject(c); what != "" {
				c.count(what)
			}
		}

		// Heal, put every remote back, let backoffs expire, and compare.
		for _, in := range all {
			if in.heal != nil {
				in.heal(c)
			}
		}
		for key := range c.faults {
			id, node, _ := strings.Cut(key, "/")
			c.h.fleet.SetFault(id, node, sim.Fault{})
		}
		for id := range c.removed {
			c.readd(id)
		}
		if err := c.reload(c.h.cfg); err != nil {
			t.Fatalf("final reload: %v", err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		select {
		case <-c.h.sys.Done():
			t.Fatalf("tree ended: %v", c.h.sys.Err())
		default:
		}
		if !c.h.sys.Ready() {
			t.Fatalf("not ready: %v", c.h.sys.NotReady())
		}
		c.h.freeze()
		c.h.refresh()
		if d := c.h.check(); d != "" {
			t.Errorf("cache after the soak: %s", d)
		}
		g, hp := usage()
		t.Logf("goroutines %d (baseline %d), heap %d MiB (baseline %d MiB)", g, goroutines, hp>>20, heap>>20)
		if float64(g) > chaosGoroutineFactor*float64(goroutines)+chaosGoroutineSlack {
			t.Errorf("%d goroutines at the end, baseline %d", g, goroutines)
		}
		if float64(hp) > chaosHeapFactor*float64(heap)+chaosHeapSlack {
			t.Errorf("heap %d MiB at the end, baseline %d MiB", hp>>20, heap>>20)
		}

		c.mu.Lock()
		c.counts["supervisor panics fired"] = int(c.supervisor.fired.Load())
		c.counts["poller panics fired"] = int(c.poller.fired.Load())
		c.counts["writer panics fired"] = int(c.writer.fired.Load())
		var lines []string
		for _, k := range slices.Sorted(maps.Keys(c.counts)) {
			lines = append(lines, fmt.Sprintf("%s: %d", k, c.counts[k]))
		}
		c.mu.Unlock()
		t.Logf("injected over %v:\n\t%s", length, strings.Join(lines, "\n\t"))
		c.checkTransitionLogs()
		c.h.stop()
	})
}

// usage returns the goroutine count and the live heap after a GC.
func usage() (int, uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// checkTransitionLogs counts, per remote, the log lines that tell a state
// transition (down, up again, degraded, a panic) and fails when one remote
// logs the same state twice in a row: logs are for transitions.
func (c *chaos) checkTransitionLogs() {
	state := func(msg string) string {
		switch {
		case strings.HasPrefix(msg, "remote down"):
			return "down"
		case strings.HasPrefix(msg, "remote up again"):
			return "up"
		case strings.HasPrefix(msg, "remote partly unreachable"):
			return "degraded"
		case strings.HasPrefix(msg, "actor panicked"), msg == "chaos: remote removed":
			return "" // each panic and each removal is an event of its own
		}
		return "other"
	}
	last := map[string]string{}
	prev := map[string]string{}
	perRemote := map[string]int{}
	kinds := map[string]int{}
	repeats := 0
	for line := range strings.Lines(c.log.String()) {
		var e struct {
			Remote  string
			Message string
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Remote == "" {
			continue
		}
		perRemote[e.Remote]++
		st := state(e.Message)
		kinds[st]++
		if st != "" && st != "other" && last[e.Remote] == st {
			repeats++
			c.t.Errorf("remote %s logged the same state again without a transition:\n\t%s\t%s", e.Remote, prev[e.Remote], line)
		}
		last[e.Remote], prev[e.Remote] = st, line
	}
	c.t.Logf("log lines with a remote: %v by remote, %v by state (\"\" = panics and removals); %d repeated", perRemote, kinds, repeats)
}
