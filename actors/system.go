package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
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
	// it under Name. Nil: taskfleet creates (and on Stop shuts down) its own.
	System *actor.ActorSystem
	// Name of the supervisor under the system's root; default "taskfleet".
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
	pollerHook  func(remote string, msg any)
	writerHook  func(msg any, applied bool)
	restartBase time.Duration
	restartMax  time.Duration
	applyLimit  time.Duration
}

// System is a running taskfleet actor tree. Its query methods read the
// cache's latest immutable snapshot and never wait for the actors; its
// commands are requests to the actors with a deadline.
type System struct {
	sys    *actor.ActorSystem
	own    bool // sys was created by Start, so Stop shuts it down
	sup    *actor.PID
	env    *Env
	latest *cache.Latest

	mu  sync.Mutex // guards cfg for Reload; never held on a read path
	cfg *config.Config

	stopOnce sync.Once
	stopErr  error

	trackMu    sync.Mutex // serialises Track and Untrack (track.go), so that MaxTracked holds
	keeperStop func()     // stops the task-log keeper; nil when none runs
}

// ErrUnknownRemote is returned for a remote id that is not configured.
var ErrUnknownRemote = errors.New("unknown remote")

// ErrNotReady is returned by queries until the cache has first been loaded.
var ErrNotReady = errors.New("cache not loaded yet")

// Start spawns the supervisor, the cache writer and one poller per remote.
// It returns at once: the cache loads in the writer (see Ready) and the
// first polls start on the first tick.
func Start(cfg *config.Config, opts Options) (*System, error) {
	if cfg == nil {
		return nil, errors.New("start: no configuration")
	}
	s := &System{sys: opts.System, cfg: cfg}
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
		Config:      cfg,
		Cache:       co,
		Budget:      NewBudget(cfg.Polling.MaxConnections, opts.ParkAfter),
		Log:         opts.Logger,
		Metrics:     opts.Metrics,
		Board:       &healthBoard{},
		Events:      opts.Events,
		pollerHook:  opts.pollerHook,
		writerHook:  opts.writerHook,
		restartBase: orDefault(opts.restartBase, time.Second),
		restartMax:  orDefault(opts.restartMax, 5*time.Minute),
		applyLimit:  orDefault(opts.applyLimit, 2*cfg.Polling.RequestTimeout+time.Minute),
	}
	if opts.Events != nil {
		env.Logs = openTaskLogs(co)
	}
	env.newClient = func(r config.Remote) (remoteClient, error) {
		return newClient(r, cfg.Polling, env.Budget.ForRemote(), opts.DialContext, opts.Metrics, opts.pollerHook)
	}
	s.env = env
	name := opts.Name
	if name == "" {
		name = "taskfleet"
	}
	pid, err := s.sys.Root.SpawnNamed(actor.PropsFromProducer(newSupervisor(env)), name)
	if err != nil {
		return nil, fmt.Errorf("spawn supervisor %q: %w", name, err)
	}
	s.sup = pid
	s.startKeeper()
	opts.Metrics.SetSnapshotAgeFunc(func() (time.Duration, bool) {
		if snap := s.latest.Published(); snap != nil {
			return time.Since(snap.Time()), true
		}
		return 0, false
	})
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Ready reports whether the cache has been loaded and the pollers spawned:
// queries answer and commands reach their actors.
func (s *System) Ready() bool { return s.env.running.Load() && s.env.cacheOpen.Load() }

// WriterFailure returns why the cache writer last failed (it is restarted
// with backoff) or why its last write failed (a full, failing or read-only
// disk: no write has succeeded since), or nil while it works: a host can
// tell a cache that cannot be opened from one that is still loading, and
// a cache that answers from memory from one that keeps its history.
func (s *System) WriterFailure() error {
	if err := s.env.writerErr.Load(); err != nil {
		return *err
	}
	if f := s.env.writes.failure(); f != nil {
		return fmt.Errorf("cache writes failing (%s) since %s, %d failed: %w", f.kind, f.since.UTC().Format(time.RFC3339), f.failures, f.err)
	}
	return nil
}

// Readiness returns nil when taskfleet is ready and serving with a cache
// that takes writes, and otherwise why not: ErrNotReady while the cache
// loads, or the writer's failure (see WriterFailure). Queries are answered
// meanwhile from the latest snapshot once the cache was loaded; /readyz
// reports this.
func (s *System) Readiness() error {
	if err := s.WriterFailure(); err != nil {
		return err
	}
	if !s.Ready() {
		return ErrNotReady
	}
	return nil
}

// Snapshot returns the latest cache snapshot, or nil until the cache has
// first been loaded (it is not nil once Ready has returned true).
func (s *System) Snapshot() *cache.Snapshot { return s.latest.Published() }

// Tasks lists tasks matching f from the latest snapshot; ErrNotReady until
// the cache has first been loaded.
func (s *System) Tasks(f task.Filter) (task.Page, error) {
	snap := s.latest.Published()
	if snap == nil {
		return task.Page{}, ErrNotReady
	}
	return snap.Query(f), nil
}

// Statistics counts tasks matching f in the latest snapshot; ErrNotReady
// until the cache has first been loaded.
func (s *System) Statistics(f task.Filter) (task.Statistics, error) {
	snap := s.latest.Published()
	if snap == nil {
		return task.Statistics{}, ErrNotReady
	}
	return snap.Statistics(f), nil
}

// Remotes returns the health of every configured remote.
func (s *System) Remotes() []Health { return s.env.Board.all() }

// HasRemote reports whether id is a configured remote.
func (s *System) HasRemote(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.cfg.Remotes, func(r config.Remote) bool { return r.ID == id })
}

// Track starts tracking a task that was started outside taskfleet: its
// status is polled every tick until it finishes, or until the remote says
// it does not exist. It returns once the tracking is durable; a request
// that cannot be right returns an error wrapping ErrInvalidTrack (see
// checkTrack).
func (s *System) Track(ctx context.Context, remote string, upid task.UPID) error {
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
func (s *System) Refresh(ctx context.Context, wait bool, remotes ...string) ([]RefreshResult, error) {
	if len(remotes) == 0 {
		s.mu.Lock()
		for _, r := range s.cfg.Remotes {
			remotes = append(remotes, r.ID)
		}
		s.mu.Unlock()
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
// remotes' pollers stop and their tracked tasks are dropped, changed remotes'
// pollers restart with the new settings. Polling and cache settings other
// than the remotes take effect on the next start.
func (s *System) Reload(ctx context.Context, cfg *config.Config) (added, removed, changed []string, err error) {
	res, err := s.request(ctx, s.sup, &messages.Reconfigure{Config: cfg})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reload: %w", err)
	}
	r, ok := res.(*messages.Reconfigured)
	if !ok {
		return nil, nil, nil, fmt.Errorf("reload: unexpected answer %T", res)
	}
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	return r.Added, r.Removed, r.Changed, nil
}

// Stop shuts taskfleet down gracefully: in-flight fetches are cancelled,
// queued batches applied, the journal merged and the files synced. It
// waits until that is done or ctx ends. The host's actor system (if one
// was passed in) keeps running; one created by Start is shut down.
func (s *System) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopKeeper() // it asks the pollers for logs
		_, err := s.request(ctx, s.sup, &messages.Shutdown{})
		if err != nil {
			s.stopErr = fmt.Errorf("stop: %w", err)
		}
		if err := s.sys.Root.StopFuture(s.sup).Wait(); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("stop supervisor: %w", err)
		}
		if s.own {
			s.sys.Shutdown()
		}
	})
	return s.stopErr
}

// request sends msg to pid and waits for the answer until ctx's deadline
// (without one, for the time a batch may take to apply). Each request has
// its own future with a single waiter: protoactor's futures wake only one.
func (s *System) request(ctx context.Context, pid *actor.PID, msg any) (any, error) {
	timeout := s.env.applyLimit
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	f := s.sys.Root.RequestFuture(pid, msg, timeout)
	if ctx.Done() == nil {
		return f.Result()
	}
	// Wait for the answer or for ctx; the goroutine ends with the future
	// (its answer or its timeout), so it outlives a cancelled ctx by at
	// most the timeout.
	type answer struct {
		res any
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		res, err := f.Result()
		ch <- answer{res, err}
	}()
	select {
	case a := <-ch:
		if errors.Is(a.err, actor.ErrTimeout) && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return a.res, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *System) childPID(name string) *actor.PID {
	return actor.NewPID(s.sys.Address(), s.sup.Id+"/"+name)
}
