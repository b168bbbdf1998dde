package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/sim"
)

// logBuffer collects log lines for tests that count them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns the number of lines containing every one of parts.
func (b *logBuffer) count(parts ...string) int {
	n := 0
	for line := range strings.Lines(b.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// panicker arms a hook to panic on its next n calls.
type panicker struct {
	armed atomic.Int64
	fired atomic.Int64
}

func (p *panicker) arm(n int64) { p.armed.Store(n) }

// maybe panics if armed, except on the lifecycle messages protoactor
// sends while it restarts or stops an actor (a panic there is not a
// failure of a message).
func (p *panicker) maybe(msg any, what string) {
	switch msg.(type) {
	case *actor.Restarting, *actor.Stopping, *actor.Stopped:
		return
	}
	if p.armed.Add(-1) >= 0 {
		p.fired.Add(1)
		panic(what)
	}
	p.armed.Store(0)
}

// lifecycleMsg reports whether msg is one protoactor delivers while it
// restarts or stops an actor.
func lifecycleMsg(msg any) bool {
	switch msg.(type) {
	case *actor.Restarting, *actor.Stopping, *actor.Stopped, *actor.Terminated:
		return true
	}
	return false
}

func requests(h *harness, id string) int64 { return h.fleet.Stats(id).Requests }

// TestSupervisorRestartKeepsReload removes a remote by reload, then panics
// the supervisor: the restarted supervisor starts from the live (reloaded)
// configuration, so the removed remote gets no request and stays out of
// health, and HasRemote agrees.
func TestSupervisorRestartKeepsReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p panicker
		h := newHarness(t, sim.Config{Seed: 21, PVEClusters: 3, PBSServers: 1, TaskRate: 2}, Options{
			supervisorHook: func(msg any) {
				if _, ok := msg.(*messages.Tick); ok {
					p.maybe(msg, "injected supervisor panic")
				}
			},
			rootBase: 100 * time.Millisecond,
		})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()

		gone := h.cfg.Remotes[1].ID
		next := *h.cfg
		next.Remotes = append(append([]config.Remote{}, h.cfg.Remotes[:1]...), h.cfg.Remotes[2:]...)
		if _, removed, _, err := h.sys.Reload(context.Background(), &next); err != nil || len(removed) != 1 {
			t.Fatalf("Reload = %v, %v", removed, err)
		}
		time.Sleep(h.cfg.Polling.Tick)
		synctest.Wait()
		after := requests(h, gone)

		p.arm(1)
		time.Sleep(time.Hour)
		synctest.Wait()
		if p.fired.Load() != 1 {
			t.Fatalf("%d supervisor panics, want 1", p.fired.Load())
		}
		if n := requests(h, gone) - after; n != 0 {
			t.Errorf("removed remote %s got %d requests after a supervisor restart", gone, n)
		}
		if h.sys.HasRemote(gone) {
			t.Errorf("HasRemote(%s) after its removal", gone)
		}
		for _, hl := range h.sys.Remotes() {
			if hl.Remote == gone {
				t.Errorf("removed remote %s back in health after a supervisor restart", gone)
			}
		}
		if !h.sys.Ready() {
			t.Errorf("not ready after the restart: %v", h.sys.NotReady())
		}
		// The others are still polled.
		id := next.Remotes[0].ID
		before := requests(h, id)
		if res, err := h.sys.Refresh(context.Background(), true, id); err != nil || res[0].Err != nil {
			t.Errorf("refresh %s after the supervisor restart: %v %v", id, err, res)
		}
		if requests(h, id) == before {
			t.Errorf("remote %s not polled after the supervisor restart", id)
		}
		h.stop()
	})
}

// TestRootStrategyOutlastsProtoactorDefault panics the supervisor 15 times
// in a row, past protoactor's default root strategy (10 restarts in 10 s,
// then stopped for good): taskfleet's root strategy restarts it with
// growing backoff and the fleet is polled again.
func TestRootStrategyOutlastsProtoactorDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			p   panicker
			log logBuffer
		)
		h := newHarness(t, sim.Config{Seed: 22, PVEClusters: 2, TaskRate: 1}, Options{
			Logger:         zerolog.New(&log),
			supervisorHook: func(msg any) { p.maybe(msg, "injected supervisor panic") },
		})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		p.arm(15)
		h.sys.sys.Root.Send(h.sys.PID(), &messages.Tick{At: time.Now()})
		start := time.Now()
		time.Sleep(time.Hour)
		synctest.Wait()
		if p.fired.Load() != 15 {
			t.Fatalf("%d panics, want 15", p.fired.Load())
		}
		select {
		case <-h.sys.Done():
			t.Fatalf("tree ended: %v", h.sys.Err())
		default:
		}
		if !h.sys.Ready() {
			t.Fatalf("not ready: %v", h.sys.NotReady())
		}
		if n := log.count(`"supervisor panicked`); n != 15 {
			t.Errorf("%d supervisor panic lines, want 15", n)
		}
		// Growing backoff: 1 s·2^(n-1) capped at a minute, jittered 0.5–1.5×,
		// so 15 restarts take at least half of 1+2+…+32+9·60 s.
		before := requests(h, h.cfg.Remotes[0].ID)
		h.refresh()
		if requests(h, h.cfg.Remotes[0].ID) == before {
			t.Error("fleet not polled after 15 supervisor restarts")
		}
		t.Logf("15 supervisor panics survived; virtual time since the first: %v", time.Since(start))
		h.stop()
	})
}

// TestTreeFailsForGood panics the supervisor on every tick until the root
// strategy's limit: Done closes, Err names the cause, Ready is false,
// NotReady (the /readyz reason) says why, commands fail at once and Stop
// returns the cause. The restart delays grow: base·2^(n-1), ±50 % jitter.
func TestTreeFailsForGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			p   panicker
			log logBuffer
		)
		h := newHarness(t, sim.Config{Seed: 23, PVEClusters: 2, TaskRate: 1}, Options{
			Logger: zerolog.New(&log),
			supervisorHook: func(msg any) {
				if _, ok := msg.(*messages.Tick); ok {
					p.maybe(msg, "injected supervisor panic")
				}
			},
			rootBase:  time.Second,
			rootMax:   time.Minute,
			rootLimit: 6,
		})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		p.arm(1000)
		select {
		case <-h.sys.Done():
		case <-time.After(time.Hour):
			t.Fatal("tree still running an hour after the supervisor started failing on every tick")
		}
		err := h.sys.Err()
		if err == nil || !strings.Contains(err.Error(), "failed 6 times in a row") || !strings.Contains(err.Error(), "injected supervisor panic") {
			t.Errorf("Err() = %v, want the limit and the panic", err)
		}
		if h.sys.Ready() {
			t.Error("Ready after the tree ended")
		}
		if nr := h.sys.NotReady(); !errors.Is(nr, ErrStopped) || !strings.Contains(nr.Error(), "injected supervisor panic") {
			t.Errorf("NotReady() = %v", nr)
		}
		start := time.Now()
		if res, err := h.sys.Refresh(context.Background(), true); err == nil && res[0].Err == nil {
			t.Error("Refresh after the tree ended succeeded")
		}
		if err := h.sys.Stop(context.Background()); !errors.Is(err, ErrStopped) {
			t.Errorf("Stop = %v, want ErrStopped", err)
		}
		if d := time.Since(start); d > 0 {
			t.Errorf("commands after the end took %v", d)
		}
		if n := p.fired.Load(); n != 6 {
			t.Errorf("%d panics, want 6", n)
		}
		var delays []time.Duration
		for line := range strings.Lines(log.String()) {
			var e struct {
				RestartInMs int64 `json:"restart_in_ms"`
				Message     string
			}
			if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.Message, "supervisor panicked") {
				delays = append(delays, time.Duration(e.RestartInMs)*time.Millisecond)
			}
		}
		if len(delays) != 5 {
			t.Fatalf("%d restarts logged, want 5 (the 6th failure stops the tree):\n%s", len(delays), log.String())
		}
		for i, d := range delays {
			want := time.Second << i
			if d < want/2 || d > want*3/2 {
				t.Errorf("restart %d after %v, want %v ± 50 %%", i+1, d, want)
			}
		}
		if n := log.count("taskfleet stopped for good"); n != 1 {
			t.Errorf("%d \"stopped for good\" lines, want 1", n)
		}
	})
}

// TestEmbeddedInHostActor spawns taskfleet as the child of a host actor
// whose strategy (OneForOne, two restarts) supervises taskfleet's
// supervisor: its first two panics are restarted by the host's strategy,
// the third stops the tree, which closes Done with the panic as the cause,
// and the host sees Terminated for the PID it got.
func TestEmbeddedInHostActor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p panicker
		h := newHarness(t, sim.Config{Seed: 24, PVEClusters: 2, TaskRate: 1}, Options{})
		strategy := &recordingStrategy{inner: actor.NewOneForOneStrategy(2, time.Hour, actor.DefaultDecider)}
		hostSys := actor.NewActorSystem(actor.WithLoggerFactory(LoggerFactory(zerolog.Nop(), slog.LevelError)))
		started := make(chan *Service, 1)
		terminated := make(chan *actor.PID, 4) // as the parent and as a watcher
		host := actor.PropsFromFunc(func(c actor.Context) {
			switch m := c.Message().(type) {
			case *actor.Started:
				opts := h.opts
				opts.Parent, opts.Name = c, "tasks"
				opts.supervisorHook = func(msg any) { p.maybe(msg, "injected supervisor panic") }
				svc, err := Start(h.cfg, opts)
				if err != nil {
					t.Error(err)
				}
				c.Watch(svc.PID())
				started <- svc
			case *actor.Terminated:
				select {
				case terminated <- m.Who:
				default:
				}
			}
		}, actor.WithSupervisor(strategy))
		hostPID := hostSys.Root.Spawn(host)
		svc := <-started
		if err := svc.WaitLoaded(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(svc.PID().Id, hostPID.Id+"/") {
			t.Errorf("supervisor %s is not a child of the host %s", svc.PID().Id, hostPID.Id)
		}
		for i := 1; i <= 2; i++ {
			p.arm(1)
			hostSys.Root.Send(svc.PID(), &messages.Tick{At: time.Now()})
			time.Sleep(time.Minute)
			synctest.Wait()
			if n := strategy.count(); n != i {
				t.Fatalf("host strategy saw %d failures, want %d", n, i)
			}
			if !svc.Ready() {
				t.Fatalf("not ready after the host's restart %d: %v", i, svc.NotReady())
			}
		}
		p.arm(1)
		hostSys.Root.Send(svc.PID(), &messages.Tick{At: time.Now()})
		synctest.Wait()
		select {
		case <-svc.Done():
		default:
			t.Fatal("tree still running after the host's strategy stopped it")
		}
		if err := svc.Err(); err == nil || !strings.Contains(err.Error(), "injected supervisor panic") {
			t.Errorf("Err() = %v, want the last panic", err)
		}
		select {
		case who := <-terminated:
			if !who.Equal(svc.PID()) {
				t.Errorf("host saw %s terminate", who.Id)
			}
		default:
			t.Error("host saw no Terminated for taskfleet's PID")
		}
		if n := strategy.count(); n != 3 {
			t.Errorf("host strategy saw %d failures, want 3", n)
		}
		hostSys.Root.StopFuture(hostPID).Wait()
	})
}

// recordingStrategy counts the failures it handles and delegates.
type recordingStrategy struct {
	inner actor.SupervisorStrategy
	mu    sync.Mutex
	n     int
}

func (s *recordingStrategy) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, msg any) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	s.inner.HandleFailure(sys, sup, child, rs, reason, msg)
}

func (s *recordingStrategy) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// TestStopReportsCloseError makes the final merge fail (the state file's
// path is a directory): Stop returns that error, and Err too.
func TestStopReportsCloseError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 25, PVEClusters: 2, TaskRate: 2}, Options{})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		// Something in the journal to merge, and the merge's last step,
		// renaming the new state file into place, fails.
		r := h.fleet.Remotes()[0]
		upid := h.fleet.StartTask(r.ID, r.Nodes[0], "qmstart", "100", time.Hour)
		if err := h.sys.Track(context.Background(), r.ID, upid); err != nil {
			t.Fatal(err)
		}
		state := filepath.Join(h.cfg.Server.CacheDir, cache.StateFile)
		if err := os.Remove(state); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(state, "blocker"), 0o750); err != nil {
			t.Fatal(err)
		}
		err := h.sys.Stop(context.Background())
		if err == nil || !strings.Contains(err.Error(), "close cache") {
			t.Fatalf("Stop = %v, want the close error", err)
		}
		<-h.sys.Done()
		if h.sys.Err() == nil {
			t.Error("Err() nil after an unclean stop")
		}
		t.Logf("Stop: %v", err)
	})
}

// TestReloadAppliesPolling changes every [polling] key but retention_days
// (applied live: the new tick paces the polls, the request timeout and
// refresh interval are used) and then retention_days (refused, naming it).
func TestReloadAppliesPolling(t *testing.T) {
	fullRefreshesOnly(t) // a node list per refresh
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 26, PVEClusters: 2, TaskRate: 1}, Options{})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()

		next := *h.cfg
		next.Polling.Tick = 30 * time.Second
		next.Polling.RefreshInterval = time.Minute
		next.Polling.MaxConnections = 3
		next.Polling.RequestTimeout = 5 * time.Second
		if _, _, _, err := h.sys.Reload(context.Background(), &next); err != nil {
			t.Fatal(err)
		}
		if got := PollingChanges(h.cfg.Polling, next.Polling); strings.Join(got, ",") != "tick,refresh_interval,max_connections,request_timeout" {
			t.Errorf("PollingChanges = %v", got)
		}
		// A refresh a minute, at the new tick's instants: node lists in 20 minutes.
		id := h.cfg.Remotes[0].ID
		before := h.fleet.Stats(id).NodeList
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		if n := h.fleet.Stats(id).NodeList - before; n < 19 || n > 21 {
			t.Errorf("%d refreshes in 20 minutes with refresh_interval 1m, want 20", n)
		}
		// The request timeout: a hanging remote fails after 5 s, not 30.
		h.fleet.SetFault(id, "", sim.Fault{Hang: true})
		start := time.Now()
		res, err := h.sys.Refresh(context.Background(), true, id)
		if err != nil || res[0].Err == nil {
			t.Fatalf("refresh of a hanging remote: %v %v", res, err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("refresh of a hanging remote took %v with request_timeout 5s", d)
		}
		h.fleet.SetFault(id, "", sim.Fault{})

		bad := next
		bad.Polling.RetentionDays = 30
		if _, _, _, err := h.sys.Reload(context.Background(), &bad); err == nil || !strings.Contains(err.Error(), "polling.retention_days") {
			t.Errorf("Reload of retention_days = %v, want a refusal naming the key", err)
		}
		h.stop()
	})
}
