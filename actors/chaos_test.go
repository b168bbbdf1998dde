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
	// chaosPollBackoffMax is the ceiling of a down remote's backoff
	// (poller.go) before jitter.
	chaosPollBackoffMax = 5 * time.Minute
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
	// step (optional) is called on every round of the soak, before an
	// injector is picked: it ends the injector's timed faults.
	step func(c *chaos)
	// check (optional) is called after the final checks of the soak: it
	// checks and logs what the injector is responsible for.
	check func(c *chaos)
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

	// marks are the highest queue high-water marks each remote's health
	// showed, sampled every round: a restarted or re-added poller's
	// health starts afresh.
	marks map[string]QueueMarks
}

// sampleMarks takes in the high-water marks the remotes' health shows now.
func (c *chaos) sampleMarks() {
	for _, h := range c.h.sys.Remotes() {
		m, n := c.marks[h.Remote], h.Marks
		c.marks[h.Remote] = QueueMarks{Waiters: max(m.Waiters, n.Waiters), Checks: max(m.Checks, n.Checks), Tracked: max(m.Tracked, n.Tracked)}
	}
}

func (c *chaos) count(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[what]++
}

// setCount records a count measured rather than injected (panics fired).
func (c *chaos) setCount(what string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[what] = n
}

// reload applies cfg and records it as the configuration in force.
func (c *chaos) reload(cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, removed, changed, err := c.h.sys.Reload(ctx, cfg)
	if err != nil {
		return err
	}
	c.cfg = cfg
	for _, id := range removed {
		// A removal ends the remote's state: the log checker starts
		// afresh with it.
		fmt.Fprintf(&c.log, "{\"remote\":%q,\"message\":\"chaos: remote removed\"}\n", id)
	}
	for _, id := range changed {
		// A changed remote gets a new poller, which starts afresh.
		fmt.Fprintf(&c.log, "{\"remote\":%q,\"message\":\"chaos: remote changed\"}\n", id)
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
			prev := o.supervisorHook
			o.supervisorHook = func(msg any) {
				if prev != nil {
					prev(msg)
				}
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
			prev := o.pollerHook
			o.pollerHook = func(remote string, msg any) {
				if prev != nil {
					prev(remote, msg)
				}
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
			prev := o.writerHook
			o.writerHook = func(msg any, applied bool) {
				if prev != nil {
					prev(msg, applied)
				}
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
			marks:   map[string]QueueMarks{},
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
		first := slices.Clone(all)
		c.rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
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
			c.sampleMarks()
			for key, until := range c.faults {
				if time.Now().After(until) {
					id, node, _ := strings.Cut(key, "/")
					c.h.fleet.SetFault(id, node, sim.Fault{})
					delete(c.faults, key)
				}
			}
			for _, in := range all {
				if in.step != nil {
					in.step(c)
				}
			}
			// Every injector once first (so that a short soak has each
			// kind), then at random by weight.
			in := bag[c.rng.IntN(len(bag))]
			if len(first) > 0 {
				in, first = first[0], first[1:]
			}
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
		// Longer than the longest delay a fault leaves behind: a writer's or
		// poller's restart (restartMax), a down remote's backoff, each with
		// 1.5× jitter, and a batch lost in flight (applyLimit), so that the
		// writer has recovered and every remote polls again.
		wait := max(10*time.Minute, time.Duration(1.5*float64(opts.restartMax+chaosPollBackoffMax))+opts.applyLimit+2*c.cfg.Polling.Tick)
		t.Logf("final wait %v (restartMax %v, poll backoff up to %v, apply limit %v)", wait, opts.restartMax, chaosPollBackoffMax, opts.applyLimit)
		time.Sleep(wait)
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

		for _, in := range all {
			if in.check != nil {
				in.check(c)
			}
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
		c.checkMarks()
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

// checkMarks checks that the high-water mark of every bounded queue of
// every remote (Health.Marks, sampled every round and at the end) stayed
// within its bound, and logs the highest.
func (c *chaos) checkMarks() {
	c.sampleMarks()
	var most QueueMarks
	for _, id := range slices.Sorted(maps.Keys(c.marks)) {
		m := c.marks[id]
		if m.Waiters > MaxWaiters || m.Checks > MaxStatusChecks || m.Tracked > MaxTracked {
			c.t.Errorf("remote %s: high-water marks %+v, bounds waiters %d, checks %d, tracked %d", id, m, MaxWaiters, MaxStatusChecks, MaxTracked)
		}
		most.Waiters, most.Checks, most.Tracked = max(most.Waiters, m.Waiters), max(most.Checks, m.Checks), max(most.Tracked, m.Tracked)
	}
	c.t.Logf("highest high-water marks: refresh waiters %d/%d, status checks %d/%d, tracked %d/%d",
		most.Waiters, MaxWaiters, most.Checks, MaxStatusChecks, most.Tracked, MaxTracked)
}

// checkTransitionLogs checks that the log tells transitions: per remote,
// a line saying its state (down, degraded, up again) or the begin or end
// of a repeated condition (failing status checks, malformed items) comes
// only when that changed since the remote's last such line; so does a
// line saying the cache writes fail (for a reason: its kind) or
// recovered. A new poller (after its
// panic, a supervisor panic, a reload that changed or removed its remote)
// starts afresh and may say its state once more. It logs the count of
// lines per remote and per message.
func (c *chaos) checkTransitionLogs() {
	repeats, transitions, byMessage := transitionLog(c.log.String())
	for _, r := range repeats {
		c.t.Errorf("logged the same state again without a transition:\n\t%s", r)
	}
	var lines []string
	for _, r := range slices.Sorted(maps.Keys(byMessage)) {
		var parts []string
		for _, m := range slices.Sorted(maps.Keys(byMessage[r])) {
			parts = append(parts, fmt.Sprintf("%q %d", m, byMessage[r][m]))
		}
		lines = append(lines, r+": "+strings.Join(parts, ", "))
	}
	c.t.Logf("log lines per remote and message:\n\t%s\n%d lines tell a state or a condition of a remote, %d of them repeated without a transition",
		strings.Join(lines, "\n\t"), transitions, len(repeats))
}

// transitionLog reads a JSON log (see checkTransitionLogs). It returns the
// lines that repeat a state without a transition (with the line before),
// how many lines tell a state or condition of a remote, and the count of
// lines per remote and message ("actor panicked" for every panic).
func transitionLog(log string) (repeats []string, transitions int, byMessage map[string]map[string]int) {
	// topic returns what a message tells and the value it sets: the
	// remote's state, or whether a condition begins or ends.
	topic := func(msg string) (string, string) {
		switch {
		case msg == "remote down":
			return "state", "down"
		case msg == "remote up again":
			return "state", "up"
		case msg == "remote partly unreachable":
			return "state", "degraded"
		}
		for _, cond := range []string{"task status checks failing", "malformed task items skipped"} {
			switch msg {
			case cond:
				return cond, "begins"
			case cond + ": no longer":
				return cond, "ends"
			}
		}
		return "", ""
	}
	type key struct{ remote, topic string }
	last := map[key]string{}
	prev := map[key]string{}
	afresh := func(remote string) {
		for k := range last {
			if remote == "" || k.remote == remote {
				delete(last, k)
			}
		}
	}
	byMessage = map[string]map[string]int{} // remote → message → lines
	writer, writerLine := "", ""
	for line := range strings.Lines(log) {
		var e struct {
			Remote  string
			Message string
			Kind    string
		}
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		msg := e.Message
		switch {
		case strings.HasPrefix(msg, "supervisor panicked"):
			afresh("") // every poller starts afresh
		case strings.HasPrefix(msg, "cache writes failing"), msg == "cache writes recovered":
			// Failing for another reason (ENOSPC, then EIO) is a transition.
			if st := msg + "/" + e.Kind; st == writer {
				repeats = append(repeats, writerLine+"\t"+line)
			} else {
				writer, writerLine = st, line
			}
		}
		if e.Remote == "" {
			continue
		}
		if strings.HasPrefix(msg, "actor panicked") {
			msg = "actor panicked" // one kind, whatever the message
		}
		if byMessage[e.Remote] == nil {
			byMessage[e.Remote] = map[string]int{}
		}
		byMessage[e.Remote][msg]++
		if msg == "actor panicked" || strings.HasPrefix(msg, "chaos: remote") {
			afresh(e.Remote) // a new poller, or none
			continue
		}
		t, v := topic(msg)
		if t == "" {
			continue
		}
		k := key{e.Remote, t}
		if last[k] == v {
			repeats = append(repeats, prev[k]+"\t"+line)
		}
		transitions++
		last[k], prev[k] = v, line
	}
	return repeats, transitions, byMessage
}

// TestTransitionLog checks the chaos soak's log checker: a state or a
// condition said twice without a transition is a repeat, unless the
// remote's poller restarted in between.
func TestTransitionLog(t *testing.T) {
	log := `{"remote":"a","message":"remote down"}
{"remote":"a","message":"remote up again"}
{"remote":"a","message":"remote down"}
{"remote":"b","message":"remote down"}
{"remote":"a","message":"actor panicked while handling *messages.PollRemote"}
{"remote":"a","message":"remote down"}
{"remote":"a","message":"task status checks failing"}
{"message":"supervisor panicked while handling *messages.Tick"}
{"remote":"a","message":"task status checks failing"}
{"remote":"b","message":"remote down"}
{"remote":"a","message":"task status checks failing"}
{"message":"cache writes failing: queries are answered from memory","kind":"no_space"}
{"message":"cache writes failing: queries are answered from memory","kind":"io"}
{"message":"cache writes recovered"}
{"message":"cache writes recovered"}
`
	repeats, transitions, byMessage := transitionLog(log)
	if len(repeats) != 2 || !strings.Contains(repeats[0], "task status checks failing") || !strings.Contains(repeats[1], "cache writes recovered") {
		t.Errorf("repeats %q, want the third status-check line of a and the second recovery", repeats)
	}
	if transitions != 9 || byMessage["a"]["remote down"] != 3 || byMessage["a"]["actor panicked"] != 1 || byMessage["b"]["remote down"] != 2 {
		t.Errorf("%d transitions, lines %v", transitions, byMessage)
	}
}
