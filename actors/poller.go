package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// pollerDeps is what the supervisor hands a poller. It is shared by the
// poller's incarnations: a restarted poller starts from it and from the
// cache snapshot, never from its predecessor's fields.
type pollerDeps struct {
	remote     config.Remote
	polling    config.Polling
	writer     *actor.PID
	latest     *cache.Latest
	newClient  func(config.Remote) (remoteClient, error)
	health     *healthCell
	log        zerolog.Logger // carries the remote field
	metrics    *metrics.Metrics
	hook       func(remote string, msg any) // test knob: called before each message and at each fetchStage; may panic
	applyLimit time.Duration                // how long to wait for the writer's BatchApplied
	backups    *backupKeeper                // told of each refresh (backups.go); nil: none
	// writerFailing reports whether the cache writer is failing (it is
	// being restarted): a poller then fetches nothing, since the writer
	// could not take the batch. Nil: never.
	writerFailing func() bool
}

// poller is the actor that owns one remote: its client and connection pool,
// its node list, its poll in flight, backoff and health.
//
// It never blocks on the network: each poll runs in a goroutine (fetchJob)
// whose result comes back as messages.FetchFinished. At most one poll is in
// flight, from the start of the fetch until the writer has applied its
// batch; a PollRemote arriving meanwhile is skipped and counted, and a due
// refresh is remembered (coalesced) rather than queued.
//
// Stop path: on Stopping and Restarting the in-flight poll's context is
// cancelled and the poller waits for its goroutine, then closes the client.
type poller struct {
	deps   *pollerDeps
	client remoteClient
	health Health

	gen      uint64
	busy     bool                    // a poll is in flight (fetching or applying)
	cancel   context.CancelFunc      // cancels the fetch goroutine; nil when none runs
	done     chan struct{}           // closed when the fetch goroutine has returned
	result   *messages.FetchFinished // the fetch whose batch the writer is applying
	applying time.Time               // when that batch was sent
	nodes    []string                // node list, renewed by each refresh
	pending  bool                    // a refresh came due while busy or backing off
	waiters  []*actor.PID            // RefreshRemote senders waiting for the next refresh
	inflight []*actor.PID            // waiters whose refresh is in flight
	backoff  backoff
	nextTry  time.Time // no poll before this (backoff)
	conns    int64     // the client's NewConns when last reported to metrics

	started   time.Time                // when the poll in flight started
	rotor     string                   // UPID of the last running task checked; the next check goes on after it
	clocks    map[string]proxmox.Clock // last clock reading per node
	lastOK    map[string]time.Time     // when each node was last fetched completely
	pulled    map[string]int64         // nodes whose cutoff was found ahead of their clock: that cutoff
	malformed condition                // malformed task items in the lists
	checkErrs condition                // status checks failing (other than gone tasks)
	logs      logFetches
	refreshes uint64          // refreshes started; every FullRefreshEvery-th is full (detect.go)
	failing   map[string]bool // nodes whose last fetch failed: listed, never stood in for (detect.go)
	guests    guestListState  // when the guest list is fetched (guestlist.go)
}

func newPoller(d *pollerDeps) actor.Producer {
	return func() actor.Actor {
		return &poller{
			deps:    d,
			backoff: backoff{min: d.polling.Tick, max: max(5*time.Minute, d.polling.Tick)},
			clocks:  map[string]proxmox.Clock{}, lastOK: map[string]time.Time{}, pulled: map[string]int64{},
			failing:   map[string]bool{},
			malformed: condition{what: "malformed task items skipped"},
			checkErrs: condition{what: "task status checks failing"},
		}
	}
}

// Receive implements actor.Actor.
func (p *poller) Receive(c actor.Context) {
	if p.deps.hook != nil {
		p.deps.hook(p.deps.remote.ID, c.Message())
	}
	switch m := c.Message().(type) {
	case *actor.Started:
		p.start()
	case *actor.Stopping:
		p.stop(c, errors.New("poller stopped"))
	case *actor.Restarting:
		p.stop(c, errors.New("poller restarted after a failure"))
	case *messages.PollRemote:
		p.poll(c, m)
	case *messages.RefreshRemote:
		if !p.addWaiter(c, c.Sender()) {
			return
		}
		if p.busy || p.writerFailing() {
			p.pending = true
			return
		}
		p.startFetch(c, true, nil)
	case *messages.FetchFinished:
		p.fetched(c, m)
	case *messages.FetchPanicked:
		if m.Gen == p.gen && p.busy {
			// Fail here, in the actor, so that supervision restarts the
			// poller; the goroutine has returned already.
			panic(fmt.Errorf("poller %s: %s goroutine panicked: %s", p.deps.remote.ID, m.Where, m.Reason))
		}
	case *messages.FetchTaskLog:
		p.fetchLog(c, m)
	case *taskLogDone:
		p.logDone(m)
	case *messages.BatchApplied:
		if p.result != nil && m.Seq == p.result.Gen {
			p.finish(c, p.result, m.Err)
		}
	}
}

func (p *poller) start() {
	p.health = p.deps.health.load()
	p.health.Remote, p.health.Kind = p.deps.remote.ID, p.deps.remote.Type
	if p.health.State == "" || p.health.State == StateCrashing {
		p.health.State = StateStarting
	}
	cl, err := p.deps.newClient(p.deps.remote)
	if err != nil {
		// A client that cannot be built (an unreadable CA file) fails
		// every poll: visible in health, not a crash loop.
		p.health.State, p.health.LastError = StateDown, err.Error()
		p.deps.log.Warn().Err(err).Msg("remote client not usable")
	}
	p.client = cl
	p.publish()
}

// stop cancels the poll in flight, waits for its goroutine, closes the
// client and tells refresh waiters why their refresh will not finish.
func (p *poller) stop(c actor.Context, why error) {
	p.stopLogs()
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.cancel = nil
	}
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
	for _, w := range append(p.inflight, p.waiters...) {
		if w != nil {
			c.Send(w, &messages.RefreshDone{Err: why})
		}
	}
	p.inflight, p.waiters, p.busy, p.result = nil, nil, false, nil
}

func (p *poller) poll(c actor.Context, m *messages.PollRemote) {
	if p.busy {
		if p.result != nil && time.Since(p.applying) > p.deps.applyLimit {
			// The writer lost the batch (it restarted mid-batch). Nothing
			// of it became durable, so the cutoffs did not move and the
			// next poll fetches the same tasks again.
			p.finish(c, p.result, errors.New("cache writer did not acknowledge the batch"))
		} else {
			p.health.SkippedTicks++
			p.deps.metrics.TickSkipped(p.deps.remote.ID)
			p.pending = p.pending || m.Refresh
			p.publish()
			return
		}
	}
	if time.Now().Before(p.nextTry) || p.writerFailing() {
		p.pending = p.pending || m.Refresh
		return
	}
	check := p.toCheck(m.CheckRunning)
	refresh := m.Refresh || p.pending
	if !refresh && len(check) == 0 {
		return
	}
	p.startFetch(c, refresh, check)
}

func (p *poller) startFetch(c actor.Context, refresh bool, check []task.UPID) {
	snap := p.deps.latest.Load()
	tracked := map[task.UPID]bool{}
	for _, u := range snap.Tracked(p.deps.remote.ID) {
		tracked[u] = true
	}
	if refresh {
		p.pending = false
		p.inflight, p.waiters = append(p.inflight, p.waiters...), nil
		p.refreshes++
	}
	p.gen++
	p.busy, p.started = true, time.Now()
	if p.client == nil {
		p.finish(c, &messages.FetchFinished{Gen: p.gen, Refresh: refresh,
			Err: errors.New("remote client not usable: " + p.health.LastError)}, nil)
		return
	}
	full := fullRefreshDue(p.deps.remote.ID, p.refreshes)
	j := &fetchJob{
		remote:    p.deps.remote.ID,
		kind:      p.deps.remote.Type,
		gen:       p.gen,
		refresh:   refresh,
		full:      full,
		guests:    refresh && p.deps.remote.Type == task.PVE && p.guests.due(full, time.Now()),
		guestEnd:  p.guests.end,
		nodes:     p.nodes,
		check:     check,
		tracked:   tracked,
		snap:      snap,
		retention: time.Duration(p.deps.polling.RetentionDays) * 24 * time.Hour,
		workers:   max(1, p.deps.remote.MaxConnections),
		client:    p.client,
		clocks:    maps.Clone(p.clocks),
		lastOK:    maps.Clone(p.lastOK),
		failing:   maps.Clone(p.failing),
	}
	if hook := p.deps.hook; hook != nil {
		remote := p.deps.remote.ID
		j.hook = func(s fetchStage) { hook(remote, s) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.cancel, p.done = cancel, done
	self, root := c.Self(), c.ActorSystem().Root
	// Stop path: cancel, then wait for done (stop and fetched do). A
	// panic here, in a worker or in a decoder is recovered and reported
	// to the poller, which fails so that its supervisor restarts it.
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				where, stack := "fetch", debug.Stack()
				if wp, ok := v.(*workerPanic); ok {
					where, v, stack = "worker", wp.value, wp.stack
				}
				if ctx.Err() == nil {
					root.Send(self, &messages.FetchPanicked{Gen: j.gen, Where: where, Reason: fmt.Sprint(v), Stack: stack})
				}
			}
		}()
		res := j.run(ctx)
		if ctx.Err() == nil {
			root.Send(self, res)
		}
	}()
}

func (p *poller) fetched(c actor.Context, m *messages.FetchFinished) {
	if !p.busy || m.Gen != p.gen || p.result != nil {
		return // a stale result of a cancelled poll
	}
	p.cancel()
	<-p.done
	p.cancel = nil
	p.health.LastFetchDuration = m.Duration
	p.deps.metrics.PollDuration(p.deps.remote.ID, m.Duration)
	st := p.client.Stats()
	p.deps.metrics.SetConnectionsOpen(p.deps.remote.ID, int(st.OpenConns))
	for ; p.conns < st.NewConns; p.conns++ {
		p.deps.metrics.ConnectionOpened(p.deps.remote.ID)
	}
	p.observeFetch(m)
	for _, n := range m.Batch.Nodes {
		if n.OK {
			delete(p.failing, n.Node)
		} else {
			p.failing[n.Node] = true
		}
	}
	if m.Refresh && len(m.Nodes) > 0 {
		p.nodes, p.health.Nodes = m.Nodes, m.Nodes
	}
	b := &m.Batch
	if len(b.Tasks) == 0 && len(b.Nodes) == 0 && len(b.Untrack) == 0 {
		p.finish(c, m, nil)
		return
	}
	// Request, not Send: the writer answers BatchApplied to this poller.
	p.result, p.applying = m, time.Now()
	c.Request(p.deps.writer, b)
}

// finish ends the poll in flight: health, backoff, refresh waiters, and a
// refresh that came due meanwhile.
func (p *poller) finish(c actor.Context, m *messages.FetchFinished, applyErr error) {
	p.busy, p.result = false, nil
	err := m.Err
	if applyErr != nil {
		err = errors.Join(err, fmt.Errorf("apply batch: %w", applyErr))
	} else {
		p.health.TasksFetched += int64(len(m.Batch.Tasks))
		p.applied(m)
	}
	anyNodeOK := false
	for _, n := range m.Batch.Nodes {
		anyNodeOK = anyNodeOK || n.OK
	}
	// The remote's health follows its lists: a refresh decides it. A poll
	// that only checked statuses or fetched the nodes of finished tasks
	// leaves it alone (so one bad task cannot flip it), unless the writer
	// failed to take the batch: then the poller backs off.
	switch {
	case applyErr != nil:
		p.failed(err)
	case !m.Refresh:
		if err != nil {
			// The nodes keep their cutoffs; the next refresh fetches them.
			p.deps.log.Debug().Err(err).Msg("fetch of finished tasks' nodes failed")
		}
	case err == nil:
		p.succeeded()
	case anyNodeOK:
		p.degraded(err)
	default:
		p.failed(err)
	}
	if err != nil && m.Refresh && time.Now().Before(p.nextTry) {
		// A failed refresh is tried again once the backoff ends. A
		// degraded one is not (it set no backoff): the remote stays in its
		// schedule, and retrying at once would refetch without pause.
		p.pending = true
	}
	p.health.Tracked = p.health.Tracked[:0:0]
	for _, u := range p.deps.latest.Load().Tracked(p.deps.remote.ID) {
		p.health.Tracked = append(p.health.Tracked, u.String())
	}
	// Health is published before the refresh's waiters hear that it is
	// done, so a caller that asks for health next sees this poll's state.
	p.publish()
	posted := m.Refresh && applyErr == nil && (err == nil || anyNodeOK)
	if posted {
		p.deps.backups.refreshed(p.deps.remote.ID, m.Guests, m.GuestsFetched, m.GuestsErr)
	}
	p.guests.finished(m.GuestsEnd, m.GuestsChanged, posted && m.GuestsFetched, p.started)
	if m.Refresh {
		done := &messages.RefreshDone{Tasks: len(m.Batch.Tasks), Duration: m.Duration, Err: err}
		for _, w := range p.inflight {
			if w != nil {
				c.Send(w, done)
			}
		}
		p.inflight = nil
	}
	if !p.writerFailing() && (len(p.waiters) > 0 || p.pending && !time.Now().Before(p.nextTry)) {
		p.startFetch(c, true, nil)
	}
}

func (p *poller) succeeded() {
	if p.health.State == StateDown || p.health.State == StateDegraded {
		p.deps.log.Info().Str("from", p.health.State).Int("failures", p.health.ConsecutiveFailures).Msg("remote up again")
	}
	p.backoff.succeeded()
	p.nextTry = time.Time{}
	p.health.State = StateUp
	p.health.LastSuccess = time.Now()
	p.health.LastError, p.health.LastErrorKind = "", ""
	p.health.ConsecutiveFailures = 0
	p.health.NextAttempt = time.Time{}
	p.deps.metrics.PollSucceeded(p.deps.remote.ID)
}

// degraded: some nodes were fetched, others failed. The remote stays in
// its schedule (no backoff): the failed nodes keep their cutoffs and are
// fetched again on the next refresh.
func (p *poller) degraded(err error) {
	p.backoff.succeeded()
	p.nextTry = time.Time{}
	if p.health.State != StateDegraded {
		p.deps.log.Warn().Err(err).Msg("remote partly unreachable")
	} else {
		p.deps.log.Debug().Err(err).Msg("poll partly failed")
	}
	p.health.State = StateDegraded
	p.health.LastSuccess = time.Now()
	p.noteError(err)
	p.health.ConsecutiveFailures = 0
}

func (p *poller) failed(err error) {
	d := p.backoff.failed()
	p.nextTry = time.Now().Add(d)
	if p.health.State != StateDown {
		p.deps.log.Warn().Err(err).Dur("retry_in_ms", d).Msg("remote down")
	} else {
		p.deps.log.Debug().Err(err).Dur("retry_in_ms", d).Int("failures", p.health.ConsecutiveFailures+1).Msg("poll failed")
	}
	p.health.State = StateDown
	p.health.ConsecutiveFailures++
	p.health.NextAttempt = p.nextTry
	p.noteError(err)
}

func (p *poller) writerFailing() bool {
	return p.deps.writerFailing != nil && p.deps.writerFailing()
}

func (p *poller) noteError(err error) {
	kind := proxmox.ErrorKind(err)
	p.health.LastError, p.health.LastErrorKind, p.health.LastErrorAt = err.Error(), kind, time.Now()
	p.deps.metrics.PollFailed(p.deps.remote.ID, kind)
}

func (p *poller) publish() { p.deps.health.store(p.health) }
