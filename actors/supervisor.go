package actors

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/tasklogs"
)

// Intervals of the periodic work, as in Proxmox Datacenter Manager.
const (
	// RunningCheckInterval is how often running tasks we did not start are
	// re-checked, so that nothing stays "running" forever.
	RunningCheckInterval = 30 * time.Second
	// RotationCheckInterval is how often the archive rotation is checked
	// (and once at start).
	RotationCheckInterval = time.Hour
	// JournalApplyInterval is how often the journal is merged into the archive.
	JournalApplyInterval = time.Hour
)

// WriterName is the cache writer's name under the supervisor.
const WriterName = "cache-writer"

// PollerName returns the name of a remote's poller under the supervisor.
func PollerName(remote string) string { return "poller/" + remote }

// supervisor is the root of taskfleet's actor tree. It spawns the cache
// writer and one poller per remote, turns ticks into per-remote polls
// (spread by a stable per-remote offset), runs the periodic cache work,
// applies configuration changes, and supervises its children: a panicking
// child is restarted after an exponentially growing delay (strategy.go).
//
// Stop path: messages.Shutdown stops the ticker and the pollers, then
// poisons the writer (which applies queued batches and its journal) and
// answers ShutdownDone when all children are gone. Stopping also stops the
// ticker, for a supervisor stopped without Shutdown.
type supervisor struct {
	env *Env

	cfg      *config.Config
	writer   *actor.PID
	pollers  map[string]*actor.PID
	deps     map[string]*pollerDeps
	cells    map[string]*healthCell
	sched    map[string]*schedule
	respawn  map[string]*config.Remote // changed remotes waiting for their old poller to stop
	rotation periodic
	journal  periodic
	ticker   *ticker

	shutdown      *actor.PID // who asked for Shutdown; nil while running
	shuttingDown  bool
	failingAtStop error                    // the cache writer was failing when the shutdown reached it
	leaving       bool                     // stopping or restarting: children are going away
	failures      map[string]*restartState // per child id
}

// Env is what the supervisor and its children share with the host and
// with their own later incarnations: the live configuration, the cache's
// snapshot handle, the connection budget, health, schedules, logging,
// metrics and the tree's lifecycle. Whatever a restarted supervisor,
// poller or writer needs lives here or in the cache snapshot, never in a
// start-time copy.
type Env struct {
	Cache   cache.Options // Latest must be set: readers hold it
	Log     zerolog.Logger
	Metrics *metrics.Metrics
	Board   *healthBoard
	Events  *events.Hub     // nil: changes are not published
	Logs    *tasklogs.Store // kept logs of failed tasks; nil: none
	backups *backupKeeper   // gets each refresh's note (backups.go); nil: none

	// live is the live configuration. The supervisor is its only writer
	// (setConfig on Reconfigure); a restarted supervisor starts from it,
	// and the Service's commands read it.
	live atomic.Pointer[liveConfig]
	// budget is the global connection budget; replaced when
	// polling.max_connections changes (clients built later use the new one).
	budget    atomic.Pointer[Budget]
	parkAfter time.Duration
	// sched holds each remote's schedule; only the supervisor (any
	// incarnation, one at a time) touches it, so a supervisor restart does
	// not make every remote due at once.
	sched map[string]*schedule
	// dropped lists remotes removed by a reload; a supervisor start sends
	// the writer DropRemote for each again (it is idempotent), so a
	// restart between the removal and the drop cannot keep their state.
	dropped map[string]bool
	life    lifecycle

	newClient      func(config.Remote) (remoteClient, error)
	pollerHook     func(remote string, msg any)
	writerHook     func(msg any, applied bool)
	supervisorHook func(msg any)
	running        atomic.Bool           // the supervisor has spawned its children
	cacheOpen      atomic.Bool           // the cache writer has opened the cache once
	writerErr      atomic.Pointer[error] // the cache writer's last failure, nil while it works
	writes         writerHealth          // whether the cache's writes reach the disk
	restartBase    time.Duration         // first restart delay after a panic
	restartMax     time.Duration         // ceiling of the restart delay
	applyKnob      time.Duration         // test knob: fixed apply limit
}

// liveConfig is a configuration with its remotes indexed by id.
type liveConfig struct {
	cfg  *config.Config
	byID map[string]*config.Remote
}

// setConfig makes cfg the live configuration.
func (e *Env) setConfig(cfg *config.Config) {
	l := &liveConfig{cfg: cfg, byID: make(map[string]*config.Remote, len(cfg.Remotes))}
	for i := range cfg.Remotes {
		l.byID[cfg.Remotes[i].ID] = &cfg.Remotes[i]
	}
	e.live.Store(l)
}

// config returns the live configuration.
func (e *Env) config() *config.Config { return e.live.Load().cfg }

// remote returns the live configuration's remote with the given id: a map
// look-up (config.Config.Remote scans, which 10,000 remotes make costly).
func (e *Env) remote(id string) (config.Remote, bool) {
	r, ok := e.live.Load().byID[id]
	if !ok {
		return config.Remote{}, false
	}
	return *r, true
}

// applyLimit is how long a batch may take to be applied: twice the
// request timeout and a minute, from the live configuration.
func (e *Env) applyLimit() time.Duration {
	if e.applyKnob > 0 {
		return e.applyKnob
	}
	return 2*e.config().Polling.RequestTimeout + time.Minute
}

func newSupervisor(env *Env) actor.Producer {
	return func() actor.Actor {
		return &supervisor{env: env}
	}
}

// Receive implements actor.Actor.
func (s *supervisor) Receive(c actor.Context) {
	defer func() {
		// Remember the panic for Service.Err (a host's strategy may stop
		// the tree for it), then let supervision handle it.
		if r := recover(); r != nil {
			s.env.life.notePanic(r)
			panic(r)
		}
	}()
	if s.env.supervisorHook != nil {
		s.env.supervisorHook(c.Message())
	}
	switch m := c.Message().(type) {
	case *actor.Started:
		s.start(c)
	case *actor.Stopping, *actor.Restarting:
		// The children are stopped next; their Terminated must not
		// respawn anything.
		s.leaving = true
		s.env.running.Store(false)
		s.ticker.stop()
		s.ticker = nil
	case *actor.Stopped:
		s.env.life.ended()
	case *messages.Tick:
		s.tick(c, m)
	case *messages.RefreshRemote:
		// Routed by the host straight to pollers; nothing to do here.
	case *messages.Reconfigure:
		c.Respond(s.reconfigure(c, m.Config))
	case *actor.Terminated:
		s.terminated(c, m.Who)
	case *messages.Shutdown:
		s.beginShutdown(c)
	}
}

func (s *supervisor) start(c actor.Context) {
	// Everything comes from the live configuration and from what Env
	// keeps: a restart after a reload keeps the reloaded remotes.
	s.cfg = s.env.config()
	s.pollers = map[string]*actor.PID{}
	s.deps = map[string]*pollerDeps{}
	s.cells = map[string]*healthCell{}
	s.sched = s.env.sched
	s.respawn = map[string]*config.Remote{}
	s.failures = map[string]*restartState{}
	if prev := s.env.Board.p.Load(); prev != nil {
		for _, r := range s.cfg.Remotes {
			if cell := (*prev)[r.ID]; cell != nil {
				s.cells[r.ID] = cell // health counters survive
			}
		}
	}
	for id := range s.sched {
		if _, ok := s.env.remote(id); !ok {
			delete(s.sched, id)
		}
	}
	// Children survive nothing of a previous incarnation (a restarting
	// actor stops its children), so everything is spawned afresh.
	props := actor.PropsFromProducer(newWriter(s.env.Cache, s.env.Log.With().Str("actor", WriterName).Logger(), s.env.Metrics, s.env.writerHook,
		func() { s.env.writerErr.Store(nil); s.env.cacheOpen.Store(true); s.env.life.markLoaded() },
		func(err error) { s.env.life.closeErr.Store(&err) }, &s.env.writes, s.env.Events))
	w, err := c.SpawnNamed(props, WriterName)
	if err != nil {
		panic(fmt.Errorf("spawn cache writer: %w", err))
	}
	s.writer = w
	for id := range s.env.dropped {
		c.Send(w, &messages.DropRemote{Remote: id})
	}
	for i := range s.cfg.Remotes {
		s.spawnPoller(c, s.cfg.Remotes[i])
	}
	s.env.Board.publish(s.cells)
	// The rotation check runs at start because periodic's zero value is
	// due; the journal was just replayed by cache.Open, so its first apply
	// waits one interval.
	now := time.Now()
	s.journal.last = now
	s.periodicWork(c, now)
	s.ticker = startTicker(c.ActorSystem().Root, c.Self(), s.cfg.Polling.Tick/tickPhases)
	s.env.running.Store(true)
}

func (s *supervisor) spawnPoller(c actor.Context, r config.Remote) {
	cell := s.cells[r.ID]
	if cell == nil {
		cell = &healthCell{}
		cell.store(Health{Remote: r.ID, Kind: r.Type, State: StateStarting})
		s.cells[r.ID] = cell
	}
	d := &pollerDeps{
		remote:     r,
		polling:    s.cfg.Polling,
		writer:     s.writer,
		latest:     s.env.Cache.Latest,
		newClient:  s.env.newClient,
		health:     cell,
		log:        s.env.Log.With().Str("remote", r.ID).Logger(),
		metrics:    s.env.Metrics,
		hook:       s.env.pollerHook,
		applyLimit: s.env.applyLimit(),
		backups:    s.env.backups,
		// A failing writer could not take a batch: pollers wait for it.
		writerFailing: func() bool { return s.env.writerErr.Load() != nil },
	}
	pid, err := c.SpawnNamed(actor.PropsFromProducer(newPoller(d)), PollerName(r.ID))
	if err != nil {
		// The old poller of this name has not stopped yet.
		s.respawn[r.ID] = &r
		return
	}
	s.pollers[r.ID], s.deps[r.ID] = pid, d
	if s.sched[r.ID] == nil {
		s.sched[r.ID] = &schedule{}
	}
}

func (s *supervisor) tick(c actor.Context, m *messages.Tick) {
	if s.shuttingDown {
		return
	}
	if late := time.Since(m.At); late > s.cfg.Polling.Tick {
		// The mailbox was busy past the next tick: skip, never queue.
		s.env.Log.Debug().Dur("late_ms", late).Msg("tick skipped")
		return
	}
	for id, pid := range s.pollers {
		sc := s.sched[id]
		if !sc.pollDue(m.At, id, s.cfg.Polling.Tick) {
			continue
		}
		refresh, running := sc.due(m.At, id, s.cfg.Polling.RefreshInterval, runningCheckInterval())
		c.Send(pid, &messages.PollRemote{Refresh: refresh, CheckRunning: running})
	}
	s.periodicWork(c, m.At)
}

func (s *supervisor) periodicWork(c actor.Context, now time.Time) {
	if s.rotation.due(now, RotationCheckInterval) {
		c.Send(s.writer, &messages.CheckRotation{})
	}
	if s.journal.due(now, JournalApplyInterval) {
		c.Send(s.writer, &messages.ApplyJournal{})
	}
}

func (s *supervisor) reconfigure(c actor.Context, cfg *config.Config) *messages.Reconfigured {
	if s.shuttingDown {
		return &messages.Reconfigured{Err: errors.New("taskfleet is stopping")}
	}
	old := s.cfg
	if err := checkReload(old, cfg); err != nil {
		return &messages.Reconfigured{Err: err}
	}
	added, removed, changed := cfg.Diff(old)
	s.cfg = cfg
	s.env.setConfig(cfg)
	if old.Polling.MaxConnections != cfg.Polling.MaxConnections {
		s.env.budget.Store(NewBudget(cfg.Polling.MaxConnections, s.env.parkAfter))
	}
	if old.Polling.Tick != cfg.Polling.Tick && s.ticker != nil {
		s.ticker.stop()
		s.ticker = startTicker(c.ActorSystem().Root, c.Self(), cfg.Polling.Tick/tickPhases)
	}
	byID := map[string]config.Remote{}
	for _, r := range cfg.Remotes {
		byID[r.ID] = r
	}
	for _, id := range added {
		delete(s.env.dropped, id)
	}
	for _, id := range removed {
		s.env.dropped[id] = true
		if pid := s.pollers[id]; pid != nil {
			c.Stop(pid) // DropRemote follows in terminated, after the poller is gone
		}
		delete(s.respawn, id)
	}
	restart := changed
	if pollersAffected(old.Polling, cfg.Polling) {
		// Every poller restarts with the new client, budget and backoff.
		restart = nil
		for id := range byID {
			if !slices.Contains(added, id) {
				restart = append(restart, id)
			}
		}
	}
	for _, id := range restart {
		r := byID[id]
		s.respawn[id] = &r
		if pid := s.pollers[id]; pid != nil {
			c.Stop(pid)
		}
	}
	for _, id := range added {
		s.spawnPoller(c, byID[id])
	}
	s.env.Board.publish(s.cells)
	return &messages.Reconfigured{Added: added, Removed: removed, Changed: changed}
}

func (s *supervisor) terminated(c actor.Context, who *actor.PID) {
	if s.leaving {
		return
	}
	if who.Equal(s.writer) {
		s.writer = nil
		if p := s.env.life.closeErr.Load(); !s.shuttingDown && p != nil && *p != nil {
			s.env.Log.Error().Err(*p).Msg("close cache")
		}
		s.finishShutdown(c)
		return
	}
	for id, pid := range s.pollers {
		if !pid.Equal(who) {
			continue
		}
		delete(s.pollers, id)
		delete(s.deps, id)
		if s.shuttingDown {
			s.finishShutdown(c)
			return
		}
		if r := s.respawn[id]; r != nil {
			delete(s.respawn, id)
			s.spawnPoller(c, *r)
			return
		}
		if !slices.ContainsFunc(s.cfg.Remotes, func(r config.Remote) bool { return r.ID == id }) {
			// Removed from the configuration: forget it everywhere.
			delete(s.cells, id)
			delete(s.sched, id)
			s.env.Board.publish(s.cells)
			s.env.Metrics.ForgetRemote(id)
			c.Send(s.writer, &messages.DropRemote{Remote: id})
		}
		return
	}
}

func (s *supervisor) beginShutdown(c actor.Context) {
	s.shutdown, s.shuttingDown = c.Sender(), true
	s.ticker.stop()
	s.ticker = nil
	s.respawn = map[string]*config.Remote{}
	for _, id := range slices.Sorted(maps.Keys(s.pollers)) {
		c.Stop(s.pollers[id])
	}
	s.finishShutdown(c)
}

// finishShutdown advances the shutdown: once the pollers are gone the
// writer is poisoned (queued batches are applied first), and once it is
// gone the requester is answered with the cache's final close error.
func (s *supervisor) finishShutdown(c actor.Context) {
	if !s.shuttingDown || len(s.pollers) > 0 {
		return
	}
	if s.writer != nil {
		if werr := s.env.writerErr.Load(); werr != nil {
			// A failing writer never gets to its mailbox (it panics in
			// Started); Stop is a system message and still reaches it.
			s.failingAtStop = fmt.Errorf("cache writer failing at stop: %w", *werr)
			c.Stop(s.writer)
		} else {
			c.Poison(s.writer)
		}
		return
	}
	if s.shutdown != nil {
		var err error
		if p := s.env.life.closeErr.Load(); p != nil && *p != nil {
			err = fmt.Errorf("close cache: %w", *p)
		}
		c.Send(s.shutdown, &messages.ShutdownDone{Err: errors.Join(s.failingAtStop, err)})
		s.shutdown = nil
	}
}
