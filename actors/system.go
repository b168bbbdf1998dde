package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/task"
)

// Options configure Start.
type Options struct {
	// System is the host's actor system; taskfleet spawns its tree inside
	// it under Name, below the system's root. Nil: taskfleet creates (and
	// on Stop shuts down) its own.
	System *actor.ActorSystem
	// Parent, when set, is the context of the host actor that spawns
	// taskfleet's tree as its child (Start must then be called from that
	// actor's Receive): the host's supervisor strategy supervises
	// taskfleet's supervisor instead of taskfleet's root strategy.
	Parent actor.SpawnerContext
	// Name of the supervisor; default "taskfleet".
	Name string
	// Logger receives taskfleet's logs (zero value: none).
	Logger zerolog.Logger
	// Metrics records polling and cache metrics (nil: none).
	Metrics *metrics.Metrics
	// DialContext, when set, replaces the network dialer of every remote
	// client (tests route clients to an in-memory simulated fleet).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ParkAfter is how long a request may hold a global connection permit
	// before it is parked (see Budget); default DefaultParkAfter.
	ParkAfter time.Duration
	// CacheOptions adjusts the cache beyond what the configuration sets
	// (its Dir, Retention and Latest are set by Start).
	CacheOptions cache.Options
	// Events, when set, gets the cache writer's changes (see package
	// events); the host owns it and closes it after Stop.
	Events *events.Hub

	// Test knobs.
	pollerHook     func(remote string, msg any)
	writerHook     func(msg any, applied bool)
	supervisorHook func(msg any)       // called before each supervisor message; may panic
	backupHook     func(remote string) // called before each of the backup keeper's rounds; may panic
	restartBase    time.Duration
	restartMax     time.Duration
	applyLimit     time.Duration
	rootBase       time.Duration
	rootMax        time.Duration
	rootQuiet      time.Duration
	rootLimit      int
}

// Service is a running taskfleet actor tree. Its query methods read the
// cache's latest immutable snapshot and never wait for the actors; its
// commands are requests to the actors with a deadline. Done, Err and
// Ready tell whether the tree runs.
type Service struct {
	sys    *actor.ActorSystem
	own    bool // sys was created by Start, so Stop shuts it down
	sup    *actor.PID
	root   *rootStrategy // nil when a host's parent actor supervises the tree
	env    *Env
	latest *cache.Latest

	stopOnce sync.Once
	stopErr  error

	trackMu    sync.Mutex // serialises Track and Untrack (track.go), so that MaxTracked holds
	keeperStop func()     // stops the task-log keeper; nil when none runs
	backups    *backupKeeper
}

// ErrUnknownRemote is returned for a remote id that is not configured.
var ErrUnknownRemote = errors.New("unknown remote")

// ErrNotReady is returned by queries until the cache has first been loaded.
var ErrNotReady = errors.New("cache not loaded yet")

// Start spawns the supervisor, the cache writer and one poller per remote.
// It returns at once: the cache loads in the writer (see WaitLoaded and
// Ready) and the first polls start on the first tick.
//
// Spawned below the actor system's root, the supervisor is supervised by
// taskfleet's root strategy (RootRestartBase … RootFailureLimit); spawned
// as the child of a host actor (Options.Parent), by the host's strategy.
// Either way, when the tree ends for good Done is closed and Err says why.
func Start(cfg *config.Config, opts Options) (*Service, error) {
	if cfg == nil {
		return nil, errors.New("start: no configuration")
	}
	s := &Service{sys: opts.System}
	if opts.Parent != nil {
		s.sys = opts.Parent.ActorSystem()
	}
	if s.sys == nil {
		s.sys = actor.NewActorSystem(actor.WithLoggerFactory(LoggerFactory(opts.Logger, slog.LevelWarn)))
		s.own = true
	}
	co := opts.CacheOptions
	co.Dir = cfg.Server.CacheDir
	co.Retention = cfg.Polling.RetentionDays
	if co.Latest == nil {
		co.Latest = &cache.Latest{}
	}
	co.Logger = opts.Logger.With().Str("component", "cache").Logger()
	s.latest = co.Latest
	env := &Env{
		Cache:          co,
		Log:            opts.Logger,
		Metrics:        opts.Metrics,
		Board:          &healthBoard{},
		Events:         opts.Events,
		parkAfter:      opts.ParkAfter,
		sched:          map[string]*schedule{},
		dropped:        map[string]bool{},
		life:           newLifecycle(),
		pollerHook:     opts.pollerHook,
		writerHook:     opts.writerHook,
		supervisorHook: opts.supervisorHook,
		restartBase:    orDefault(opts.restartBase, time.Second),
		restartMax:     orDefault(opts.restartMax, 5*time.Minute),
		applyKnob:      opts.applyLimit,
	}
	if opts.Events != nil {
		env.Logs = openTaskLogs(co)
	}
	env.setConfig(cfg)
	env.budget.Store(NewBudget(cfg.Polling.MaxConnections, opts.ParkAfter))
	env.newClient = func(r config.Remote) (remoteClient, error) {
		// The live configuration and budget: a poller restarted after a
		// reload uses the reloaded settings.
		return newClient(r, env.config().Polling, env.budget.Load().ForRemote(), opts.DialContext, opts.Metrics, opts.pollerHook)
	}
	s.env = env
	s.backups = newBackupKeeper(s, co.Dir)
	s.backups.hook = opts.backupHook
	env.backups = s.backups // before the pollers are spawned: they post to it
	name := opts.Name
	if name == "" {
		name = "taskfleet"
	}
	var (
		pid *actor.PID
		err error
	)
	if opts.Parent != nil {
		pid, err = opts.Parent.SpawnNamed(actor.PropsFromProducer(newSupervisor(env)), name)
	} else {
		s.root = newRootStrategy(env, opts)
		pid, err = s.sys.Root.SpawnNamed(actor.PropsFromProducer(newSupervisor(env), actor.WithGuardian(s.root)), name)
	}
	if err != nil {
		return nil, fmt.Errorf("spawn supervisor %q: %w", name, err)
	}
	s.sup = pid
	s.startKeeper()
	s.backups.start()
	opts.Metrics.SetSnapshotAgeFunc(func() (time.Duration, bool) {
		if snap := s.latest.Published(); snap != nil {
			return time.Since(snap.Time()), true
		}
		return 0, false
	})
	opts.Metrics.SetCacheCountsFunc(func() (metrics.CacheCounts, bool) {
		if snap := s.latest.Published(); snap != nil {
			return cacheCounts(snap), true
		}
		return metrics.CacheCounts{}, false
	})
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// PID is the supervisor's: a host may Watch it (Terminated arrives when
// the tree has ended) or supervise it as its child (Options.Parent).
func (s *Service) PID() *actor.PID { return s.sup }

// ActorSystem is the actor system the tree runs in.
func (s *Service) ActorSystem() *actor.ActorSystem { return s.sys }

// Done is closed when the tree has ended: after Stop, or for good after a
// failure (the root strategy's limit, or a host's strategy stopping it).
// After a failure, Stop still has to be called: it waits for the
// service's goroutines (the log and backup keepers) and returns Err.
func (s *Service) Done() <-chan struct{} { return s.env.life.done }

// Err returns why the tree ended: the failure that stopped it, or Stop's
// error after an unclean stop. It is nil while the tree runs and after a
// clean Stop.
func (s *Service) Err() error {
	if !s.env.life.isDone() {
		return nil
	}
	return s.env.life.err()
}

// WaitLoaded waits until the cache has been loaded (nil), the cache
// writer failed before that (its error: a host can tell a cache that
// cannot be opened from one still loading), the tree ended, or ctx ended.
func (s *Service) WaitLoaded(ctx context.Context) error {
	for {
		select {
		case <-s.env.life.loaded:
			return nil
		case <-s.env.life.writerFail:
			if err := s.WriterFailure(); err != nil && !s.env.cacheOpen.Load() {
				return err
			}
		case <-s.env.life.done:
			return s.NotReady()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Ready reports whether the cache has been loaded and the pollers spawned:
// queries answer and commands reach their actors. It is false while the
// supervisor restarts after a panic and once the tree has ended.
func (s *Service) Ready() bool {
	return s.env.running.Load() && s.env.cacheOpen.Load() && !s.env.life.isDone()
}

// NotReady returns nil when taskfleet is ready and its cache takes
// writes, and otherwise why not (for /readyz): the tree has ended, the
// cache is loading or cannot be opened, the supervisor is restarting, or
// the cache's writes fail (a full, failing or read-only disk; queries are
// still answered from the latest snapshot then).
func (s *Service) NotReady() error {
	switch {
	case s.env.life.isDone():
		if err := s.env.life.err(); err != nil {
			return fmt.Errorf("%w: %w", ErrStopped, err)
		}
		return ErrStopped
	case !s.env.cacheOpen.Load():
		if err := s.WriterFailure(); err != nil {
			return fmt.Errorf("cache not loaded: %w", err)
		}
		return ErrNotReady
	case !s.env.running.Load():
		return errors.New("taskfleet supervisor restarting after a failure")
	}
	return s.WriterFailure()
}

// WriterFailure returns why the cache writer last failed (it is restarted
// with backoff) or why its last write failed (a full, failing or read-only
// disk: no write has succeeded since), or nil while it works: a host can
// tell a cache that cannot be opened from one that is still loading, and
// a cache that answers from memory from one that keeps its history.
func (s *Service) WriterFailure() error {
	if err := s.env.writerErr.Load(); err != nil {
		return *err
	}
	if f := s.env.writes.failure(); f != nil {
		return fmt.Errorf("cache writes failing (%s) since %s, %d failed: %w", f.kind, f.since.UTC().Format(time.RFC3339), f.failures, f.err)
	}
	return nil
}

// Snapshot returns the latest cache snapshot, or nil until the cache has
// first been loaded (it is not nil once Ready has returned true).
func (s *Service) Snapshot() *cache.Snapshot { return s.latest.Published() }

// Tasks lists tasks matching f from the latest snapshot; ErrNotReady until
// the cache has first been loaded.
func (s *Service) Tasks(f task.Filter) (task.Page, error) {
	snap := s.latest.Published()
	if snap == nil {
		return task.Page{}, ErrNotReady
	}
	return snap.Query(f), nil
}

// Statistics counts tasks matching f in the latest snapshot; ErrNotReady
// until the cache has first been loaded.
func (s *Service) Statistics(f task.Filter) (task.Statistics, error) {
	snap := s.latest.Published()
	if snap == nil {
		return task.Statistics{}, ErrNotReady
	}
	return snap.Statistics(f), nil
}

// Remotes returns the health of every configured remote.
func (s *Service) Remotes() []Health { return s.env.Board.all() }

// HasRemote reports whether id is a remote of the live configuration.
func (s *Service) HasRemote(id string) bool {
	_, ok := s.env.remote(id)
	return ok
}

// Track starts tracking a task that was started outside taskfleet: its
// status is polled every tick until it finishes, or until the remote says
// it does not exist. It returns once the tracking is durable; a request
// that cannot be right returns an error wrapping ErrInvalidTrack (see
// checkTrack).
func (s *Service) Track(ctx context.Context, remote string, upid task.UPID) error {
	if !s.HasRemote(remote) {
		return fmt.Errorf("track %s: %w %q", upid, ErrUnknownRemote, remote)
	}
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	if err := s.checkTrack(remote, upid); err != nil {
		return fmt.Errorf("track %s: %w", upid, err)
	}
	res, err := s.request(ctx, s.childPID(WriterName), &messages.TrackTask{Remote: remote, UPID: upid})
	if err != nil {
		return fmt.Errorf("track %s: %w", upid, err)
	}
	r, ok := res.(*messages.TrackTaskResult)
	if !ok {
		return fmt.Errorf("track %s: unexpected answer %T", upid, res)
	}
	return r.Err
}

// RefreshResult is the outcome of one remote's refresh.
type RefreshResult struct {
	Remote   string
	Tasks    int
	Duration time.Duration
	Err      error
}

// Refresh asks the pollers of the given remotes (all when none are given)
// for a full incremental refresh now. With wait, it returns when each has
// finished or failed, or when ctx ends (a remote that did not answer in
// time gets ctx's error); without, it returns at once.
func (s *Service) Refresh(ctx context.Context, wait bool, remotes ...string) ([]RefreshResult, error) {
	if len(remotes) == 0 {
		for _, r := range s.env.config().Remotes {
			remotes = append(remotes, r.ID)
		}
	}
	for _, id := range remotes {
		if !s.HasRemote(id) {
			return nil, fmt.Errorf("refresh: %w %q", ErrUnknownRemote, id)
		}
	}
	if !wait {
		for _, id := range remotes {
			s.sys.Root.Send(s.childPID(PollerName(id)), &messages.RefreshRemote{})
		}
		return nil, nil
	}
	out := make([]RefreshResult, len(remotes))
	var wg sync.WaitGroup
	for i, id := range remotes {
		wg.Go(func() {
			out[i] = RefreshResult{Remote: id}
			res, err := s.request(ctx, s.childPID(PollerName(id)), &messages.RefreshRemote{})
			if err != nil {
				out[i].Err = err
				return
			}
			if d, ok := res.(*messages.RefreshDone); ok {
				out[i].Tasks, out[i].Duration, out[i].Err = d.Tasks, d.Duration, d.Err
			} else {
				out[i].Err = fmt.Errorf("unexpected answer %T", res)
			}
		})
	}
	wg.Wait()
	return out, nil
}

// Reload applies a new configuration: new remotes get a poller, removed
// remotes' pollers stop and their tracked tasks are dropped, changed
// remotes' pollers restart with the new settings, and every [polling] key
// applies at once (see PollingChanges), except retention_days: a change
// there refuses the whole configuration with an error naming the key.
// [server] settings are not the service's (the daemon's listener and the
// cache directory stay until a restart).
func (s *Service) Reload(ctx context.Context, cfg *config.Config) (added, removed, changed []string, err error) {
	if err := checkReload(s.env.config(), cfg); err != nil {
		return nil, nil, nil, fmt.Errorf("reload: %w", err)
	}
	res, err := s.request(ctx, s.sup, &messages.Reconfigure{Config: cfg})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reload: %w", err)
	}
	r, ok := res.(*messages.Reconfigured)
	if !ok {
		return nil, nil, nil, fmt.Errorf("reload: unexpected answer %T", res)
	}
	if r.Err != nil {
		return nil, nil, nil, fmt.Errorf("reload: %w", r.Err)
	}
	return r.Added, r.Removed, r.Changed, nil
}

// Stop shuts taskfleet down gracefully: in-flight fetches are cancelled,
// queued batches applied, the journal merged and the files synced. It
// waits until that is done or ctx ends, and returns the cache's final
// merge or sync error: nil means a clean stop. A tree that had already
// ended returns its cause. The host's actor system (if one was passed in)
// keeps running; one created by Start is shut down.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopKeeper()  // it asks the pollers for logs
		s.stopBackups() // so does the backup keeper
		life := &s.env.life
		if life.isDone() {
			if err := life.err(); err != nil {
				s.stopErr = fmt.Errorf("stop: %w: %w", ErrStopped, err)
			}
			s.release()
			return
		}
		life.stopping.Store(true)
		s.root.restartNow() // a supervisor waiting out its backoff takes Shutdown now
		res, err := s.request(ctx, s.sup, &messages.Shutdown{})
		switch d, ok := res.(*messages.ShutdownDone); {
		case err != nil:
			s.stopErr = fmt.Errorf("stop: %w", err)
		case !ok:
			s.stopErr = fmt.Errorf("stop: unexpected answer %T", res)
		case d.Err != nil:
			s.stopErr = fmt.Errorf("stop: %w", d.Err)
		}
		life.fail(s.stopErr)
		if err := s.sys.Root.StopFuture(s.sup).Wait(); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("stop supervisor: %w", err)
		}
		select {
		case <-life.done:
		case <-ctx.Done():
			if s.stopErr == nil {
				s.stopErr = fmt.Errorf("stop: %w", ctx.Err())
			}
		}
		s.release()
	})
	return s.stopErr
}

// release frees what Start took from the actor system: its own system, or
// the guardian of the root strategy in a host's.
func (s *Service) release() {
	if s.own {
		s.sys.Shutdown()
	} else if s.root != nil {
		s.sys.ProcessRegistry.Remove(s.sys.Root.Copy().WithGuardian(s.root).Self())
	}
}

// request sends msg to pid and waits for the answer until ctx's deadline
// (without one, for the time a batch may take to apply). The answer comes
// to a reply process of its own (reply.go), removed from the registry
// when the wait ends, whichever way: a late answer is a dead letter.
func (s *Service) request(ctx context.Context, pid *actor.PID, msg any) (any, error) {
	if s.env.life.isDone() {
		return nil, s.NotReady()
	}
	timeout := s.env.applyLimit()
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	reply, self, err := newReply(s.sys)
	if err != nil {
		return nil, err
	}
	defer s.sys.ProcessRegistry.Remove(self)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	s.sys.Root.RequestWithCustomSender(pid, msg, self)
	// Wait for the answer, for ctx, or for the tree to end (then no answer
	// comes).
	select {
	case a := <-reply.answer:
		return a.res, a.err
	case <-timer.C:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, actor.ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.env.life.done:
		return nil, s.NotReady()
	}
}

func (s *Service) childPID(name string) *actor.PID {
	return actor.NewPID(s.sys.Address(), s.sup.Id+"/"+name)
}
