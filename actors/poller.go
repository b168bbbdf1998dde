package actors

import (
	"context"
	"errors"
	"fmt"
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
	hook       func(remote string, msg any) // test knob: called before each message; may panic
	applyLimit time.Duration                // how long to wait for the writer's BatchApplied
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

	refreshes uint64 // refreshes started; every FullRefreshEvery-th is full (detect.go)
}

func newPoller(d *pollerDeps) actor.Producer {
	return func() actor.Actor {
		return &poller{deps: d, backoff: backoff{min: d.polling.Tick, max: max(5*time.Minute, d.polling.Tick)}}
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
		p.waiters = append(p.waiters, c.Sender())
		if p.busy {
			p.pending = true
			return
		}
		p.startFetch(c, true, nil)
	case *messages.FetchFinished:
		p.fetched(c, m)
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
			c.Send(w, &messages.RefreshDone{Remote: p.deps.remote.ID, Err: why})
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
	if time.Now().Before(p.nextTry) {
		p.pending = p.pending || m.Refresh
		return
	}
	snap := p.deps.latest.Load()
	check := snap.Tracked(p.deps.remote.ID)
	if m.CheckRunning {
		seen := map[task.UPID]bool{}
		for _, u := range check {
			seen[u] = true
		}
		for _, t := range snap.Running(p.deps.remote.ID) {
			if !seen[t.UPID] {
				check = append(check, t.UPID)
			}
		}
	}
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
	p.busy = true
	if p.client == nil {
		p.finish(c, &messages.FetchFinished{Gen: p.gen, Refresh: refresh,
			Err: errors.New("remote client not usable: " + p.health.LastError)}, nil)
		return
	}
	j := &fetchJob{
		remote:    p.deps.remote.ID,
		kind:      p.deps.remote.Type,
		gen:       p.gen,
		refresh:   refresh,
		full:      fullRefreshDue(p.deps.remote.ID, p.refreshes),
		nodes:     p.nodes,
		check:     check,
		tracked:   tracked,
		snap:      snap,
		retention: time.Duration(p.deps.polling.RetentionDays) * 24 * time.Hour,
		workers:   max(1, p.deps.remote.MaxConnections),
		client:    p.client,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.cancel, p.done = cancel, done
	self, root := c.Self(), c.ActorSystem().Root
	go func() {
		defer close(done)
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
	for _, err := range m.Skipped {
		// The rest of the page was kept; the item is the remote's fault.
		p.deps.log.Warn().Err(err).Msg("malformed task item skipped")
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
	}
	anyNodeOK := false
	for _, n := range m.Batch.Nodes {
		anyNodeOK = anyNodeOK || n.OK
	}
	switch {
	case err == nil:
		p.succeeded()
	case anyNodeOK && applyErr == nil:
		p.degraded(err)
	default:
		p.failed(err)
	}
	if m.Refresh {
		done := &messages.RefreshDone{Remote: p.deps.remote.ID, Tasks: len(m.Batch.Tasks), Duration: m.Duration, Err: err}
		for _, w := range p.inflight {
			if w != nil {
				c.Send(w, done)
			}
		}
		p.inflight = nil
	}
	p.health.Tracked = p.health.Tracked[:0:0]
	for _, u := range p.deps.latest.Load().Tracked(p.deps.remote.ID) {
		p.health.Tracked = append(p.health.Tracked, u.String())
	}
	p.publish()
	if len(p.waiters) > 0 || p.pending && !time.Now().Before(p.nextTry) {
		p.startFetch(c, true, nil)
	}
}

func (p *poller) succeeded() {
	if p.health.State == StateDown {
		p.deps.log.Info().Int("failures", p.health.ConsecutiveFailures).Msg("remote up again")
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
		p.deps.log.Warn().Err(err).Dur("retry_in", d).Msg("remote down")
	} else {
		p.deps.log.Debug().Err(err).Dur("retry_in", d).Int("failures", p.health.ConsecutiveFailures+1).Msg("poll failed")
	}
	p.health.State = StateDown
	p.health.ConsecutiveFailures++
	p.health.NextAttempt = p.nextTry
	p.noteError(err)
}

func (p *poller) noteError(err error) {
	kind := proxmox.ErrorKind(err)
	p.health.LastError, p.health.LastErrorKind, p.health.LastErrorAt = err.Error(), kind, time.Now()
	p.deps.metrics.PollFailed(p.deps.remote.ID, kind)
}

func (p *poller) publish() { p.deps.health.store(p.health) }
