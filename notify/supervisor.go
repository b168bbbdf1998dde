package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/internal/retry"
)

// Restart backoff of a panicking notifier.
const (
	restartBase = time.Second
	restartMax  = 5 * time.Minute
)

// DefaultStopGrace is how long a stop waits for a delivery in flight.
const DefaultStopGrace = 5 * time.Second

// DefaultStaleEvery is how often stale-guest rules are checked by default.
const DefaultStaleEvery = 10 * time.Minute

// Options configure the notifiers.
type Options struct {
	Targets []config.Notify
	// CacheDir holds the delivery state (CacheDir/notify/<target>.json).
	CacheDir string
	// Retention is the cache's retention: delivered tasks are forgotten a
	// day after it.
	Retention time.Duration
	// Hub delivers the cache writer's changes; nil: only rescans.
	Hub *events.Hub
	// Snapshot returns the cache's latest snapshot (Service.Snapshot), read
	// on start and on every Reload event.
	Snapshot func() *cache.Snapshot
	// Guests feeds the [[notify.stale]] rules; nil: they never fire.
	Guests GuestSource
	// StaleEvery is how often stale rules are checked; default
	// DefaultStaleEvery (the refresh interval is a good value).
	StaleEvery time.Duration
	Logger     zerolog.Logger
	Metrics    *Metrics // nil: counted, not registered
	// Dial replaces the network dialer of deliveries (tests).
	Dial DialFunc
	// StopGrace is how long a stop waits for a delivery in flight to end
	// (and records it when it succeeded) before it cancels it; default
	// DefaultStopGrace, negative: cancel at once (as a kill would).
	StopGrace time.Duration

	buffer int // test knob: the subscription's buffer; default subscribeBuffer
}

// env is what every notifier shares.
type env struct {
	opts Options
	gens atomic.Uint64
}

// Notifiers is the running notifier tree.
type Notifiers struct {
	sys     *actor.ActorSystem
	sup     *actor.PID
	senders []Sender
}

// Start spawns a notifier per target under a supervisor, in an actor
// system of its own. Stop stops them.
func Start(opts Options) (*Notifiers, error) {
	if opts.StaleEvery <= 0 {
		opts.StaleEvery = DefaultStaleEvery
	}
	if opts.buffer <= 0 {
		opts.buffer = subscribeBuffer
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	e := &env{opts: opts}
	ns := &Notifiers{}
	var children []*notifier
	for i := range opts.Targets {
		t := &opts.Targets[i]
		s, err := NewSender(t, opts.Dial)
		if err != nil {
			ns.closeSenders()
			return nil, err
		}
		ns.senders = append(ns.senders, s)
		children = append(children, &notifier{target: t, env: e, sender: s, log: opts.Logger.With().Str("component", "notify").Str("target", t.Name).Logger()})
	}
	for _, t := range opts.Targets {
		if len(t.Stale) > 0 && opts.Guests == nil {
			opts.Logger.Warn().Str("component", "notify").Str("target", t.Name).Msg("[[notify.stale]] rules need the backup overview, which is not available: they never fire")
		}
	}
	ns.sys = actor.NewActorSystem(actor.WithLoggerFactory(actors.LoggerFactory(opts.Logger, slog.LevelWarn)))
	sup := &supervisor{log: opts.Logger.With().Str("component", "notify").Logger(), children: children, failures: map[string]*restartState{}}
	pid, err := ns.sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return sup }), "notify")
	if err != nil {
		ns.sys.Shutdown()
		ns.closeSenders()
		return nil, fmt.Errorf("start notifiers: %w", err)
	}
	ns.sup = pid
	return ns, nil
}

// Stop stops every notifier and waits for them: deliveries in flight are
// cancelled (and sent again after the next start). Stop is not safe to
// call twice.
func (ns *Notifiers) Stop() error {
	err := ns.sys.Root.StopFuture(ns.sup).Wait()
	ns.sys.Shutdown()
	ns.closeSenders()
	if err != nil {
		return fmt.Errorf("stop notifiers: %w", err)
	}
	return nil
}

func (ns *Notifiers) closeSenders() {
	for _, s := range ns.senders {
		s.Close()
	}
}

// supervisor spawns the notifiers and restarts a panicking one with
// backoff, forever. It has no state a restart could lose but the
// counters of failures.
type supervisor struct {
	log      zerolog.Logger
	children []*notifier
	failures map[string]*restartState
}

type restartState struct {
	n    int
	last time.Time
}

// Receive implements actor.Actor.
func (s *supervisor) Receive(c actor.Context) {
	if _, ok := c.Message().(*actor.Started); !ok {
		return
	}
	for _, n := range s.children {
		proto := *n // each spawn (and restart) starts from the unstarted value
		props := actor.PropsFromProducer(func() actor.Actor { cp := proto; return &cp })
		if _, err := c.SpawnNamed(props, n.target.Name); err != nil && !errors.Is(err, actor.ErrNameExists) {
			s.log.Error().Err(err).Str("target", n.target.Name).Msg("notifier not started")
		}
	}
}

// HandleFailure implements actor.SupervisorStrategy: restart after
// restartBase·2^(n-1) (0.5–1.5× jitter), at most restartMax, forever; n
// resets after ten quiet ceilings.
func (s *supervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, msg any) {
	st := s.failures[child.Id]
	if st == nil {
		st = &restartState{}
		s.failures[child.Id] = st
	}
	now := time.Now()
	if now.Sub(st.last) > 10*restartMax {
		st.n = 0
	}
	st.n++
	st.last = now
	d := retry.Delay(restartBase, restartMax, st.n)
	s.log.Error().Str("reason", fmt.Sprint(reason)).Int("failures", st.n).Int64("restart_in_ms", d.Milliseconds()).Str("actor", child.Id).Msgf("notifier panicked while handling %T", msg)
	// The timer only posts a system message; after a stop it is a dead letter.
	time.AfterFunc(d, func() { sup.RestartChildren(child) })
}
