package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/internal/retry"
	"github.com/taskfleet/taskfleet/notify/tmpl"
	"github.com/taskfleet/taskfleet/task"
)

// Delivery retries and bounds.
const (
	retryBase = 5 * time.Second
	retryMax  = 10 * time.Minute
	// subscribeBuffer is the subscription's buffer: finished tasks that
	// match a rule are a small part of all events.
	subscribeBuffer = 1024
	// rescanSlack: a rescan looks at tasks that started up to this long
	// before the state's since (tasks that ended after it).
	rescanSlack = 48 * time.Hour
	// subscribeTimeout bounds a Subscribe call (the hub answers at once
	// unless it is stuck).
	subscribeTimeout = 10 * time.Second
)

// notifier is the actor of one target: the only owner of its queue and
// delivery state. See the package documentation.
type notifier struct {
	target *config.Notify
	env    *env
	sender Sender
	log    zerolog.Logger

	gen  uint64
	self *actor.PID
	sys  *actor.ActorSystem
	file string

	state    *deliveryState
	pending  []task.Task       // queued, oldest first
	stale    []tmpl.StaleGuest // guests to announce
	queued   map[string]bool   // keys of pending and in-flight tasks and guests
	dropped  int               // tasks dropped since the last message
	failures int               // consecutive failed deliveries
	failedAt time.Time         // first failure of the current run of failures
	timer    *time.Timer       // the window or a retry's backoff; nil: none armed

	// The delivery in flight.
	sending     bool
	inflight    []task.Task
	inStale     []tmpl.StaleGuest
	inDropped   int
	cancelSend  context.CancelFunc
	sendDone    chan error // the delivery's outcome; buffered, written once
	staleTimer  *time.Timer
	sub         *events.Subscription
	subDone     chan struct{}
	lastID      uint64 // ID of the last event seen: where a new subscription resumes
	subscribing *time.Timer
}

// Receive implements actor.Actor.
func (n *notifier) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		n.start(c)
	case *actor.Stopping, *actor.Restarting:
		n.stop()
	case eventReceived:
		if m.gen == n.gen {
			n.event(m.ev)
		}
	case subscriptionEnded:
		if m.gen == n.gen {
			n.subscriptionEnded(m.err)
		}
	case resubscribe:
		if m.gen == n.gen {
			n.subscribing = nil
			n.subscribe()
		}
	case windowClosed:
		if m.gen == n.gen {
			n.timer = nil
			n.flush()
		}
	case deliveryFinished:
		if m.gen == n.gen && n.sending {
			n.delivered(<-n.sendDone)
		}
	case checkStale:
		if m.gen == n.gen {
			n.checkStale()
		}
	}
}

// start loads the delivery state, subscribes to the hub and queues what
// the cache holds and was not delivered.
func (n *notifier) start(c actor.Context) {
	n.gen = n.env.gens.Add(1)
	n.self, n.sys = c.Self(), c.ActorSystem()
	n.file = stateFile(n.env.opts.CacheDir, n.target.Name)
	n.queued = map[string]bool{}
	now := time.Now()
	st, err := loadState(n.file, now)
	var serr *StateError
	switch {
	case errors.As(err, &serr):
		aside := fmt.Sprintf("%s.corrupt-%d", n.file, now.Unix())
		n.log.Error().Err(err).Str("file", n.file).Str("moved_to", aside).Msg("notify state unusable: starting afresh from now")
		_ = os.Rename(n.file, aside)
		if st, err = loadState(n.file, now); err != nil {
			panic(err) // not moved aside: the supervisor restarts us with backoff
		}
	case err != nil:
		panic(err) // unreadable (permissions, I/O): the supervisor restarts us with backoff
	}
	n.state = st
	if st.created {
		// Record since at once: a crash before the first delivery must
		// not move it (tasks would be skipped).
		if err := n.state.save(n.file); err != nil {
			panic(err)
		}
		n.log.Info().Str("file", n.file).Msg("notify state created: tasks that end from now on are notified")
	}
	n.subscribe()
	n.rescan()
	if len(n.target.Stale) > 0 && n.env.opts.Guests != nil {
		n.checkStale()
	}
}

// stop ends the subscription, the delivery in flight and the timers, and
// waits for the goroutines.
func (n *notifier) stop() {
	n.gen = 0 // messages already queued for this instance are ignored
	for _, t := range []*time.Timer{n.timer, n.staleTimer, n.subscribing} {
		if t != nil {
			t.Stop()
		}
	}
	n.timer, n.staleTimer, n.subscribing = nil, nil, nil
	if n.sub != nil {
		n.sub.Close()
		<-n.subDone
		n.sub = nil
	}
	if n.sending {
		// A delivery about to succeed is given a moment to finish and be
		// recorded, so that a stop or a reload sends no duplicate; a kill
		// (or StopGrace < 0) leaves the crash window instead.
		grace := time.NewTimer(max(n.env.opts.StopGrace, 0))
		select {
		case err := <-n.sendDone:
			if err == nil {
				n.record()
			}
		case <-grace.C:
			n.cancelSend()
			<-n.sendDone
		}
		grace.Stop()
		n.cancelSend()
		n.sending = false
	}
}

// send posts msg to the notifier from a goroutine or timer.
func (n *notifier) send(msg any) { n.sys.Root.Send(n.self, msg) }

// subscribe subscribes to the hub, resuming after the last event seen.
func (n *notifier) subscribe() {
	hub := n.env.opts.Hub
	if hub == nil {
		return
	}
	target := n.target
	ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
	defer cancel()
	sub, err := hub.Subscribe(ctx, events.SubscribeOptions{
		Match:  func(e *events.Event) bool { return e.Type == events.Finished && target.MatchTask(&e.Task) },
		Buffer: n.env.opts.buffer,
		Resume: n.lastID != 0,
		After:  n.lastID,
	})
	if errors.Is(err, events.ErrClosed) {
		n.log.Debug().Msg("events hub closed: not subscribing")
		return
	}
	if err != nil {
		n.log.Warn().Err(err).Int64("retry_in_ms", time.Second.Milliseconds()).Msg("subscribe to events failed")
		gen := n.gen
		n.subscribing = time.AfterFunc(time.Second, func() { n.send(resubscribe{gen}) })
		return
	}
	if n.lastID == 0 {
		n.lastID = sub.Last
	}
	n.sub, n.subDone = sub, make(chan struct{})
	gen, done, self, root := n.gen, n.subDone, n.self, n.sys.Root
	go func() { // stopped by sub.Close (stop) or the hub; stop waits for done
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				root.Send(self, subscriptionEnded{gen: gen, err: fmt.Errorf("event reader panicked: %v", v)})
			}
		}()
		for ev := range sub.C {
			root.Send(self, eventReceived{gen: gen, ev: ev})
		}
		root.Send(self, subscriptionEnded{gen: gen, err: sub.Err()})
	}()
}

// subscriptionEnded resubscribes unless the hub closed.
func (n *notifier) subscriptionEnded(err error) {
	if n.sub != nil {
		<-n.subDone
		n.sub = nil
	}
	if errors.Is(err, events.ErrClosed) {
		n.log.Debug().Msg("events hub closed")
		return
	}
	n.log.Debug().Err(err).Uint64("after_id", n.lastID).Msg("event subscription ended: resuming")
	n.subscribe()
}

// event handles one event of the subscription.
func (n *notifier) event(ev events.Event) {
	n.lastID = ev.ID
	switch ev.Type {
	case events.Reload:
		n.log.Debug().Str("reason", ev.Reason).Msg("events reload: rescanning the cache")
		n.rescan()
	case events.Finished:
		n.offer(ev.Task)
	}
}

// rescan offers every task of the cache's snapshot that matches a rule
// and ended since the state's start.
func (n *notifier) rescan() {
	if n.env.opts.Snapshot == nil || len(n.target.Rules) == 0 {
		return
	}
	snap := n.env.opts.Snapshot()
	if snap == nil {
		return
	}
	var classes task.StatusSet
	for _, r := range n.target.Rules {
		classes |= r.Status
	}
	since := n.state.Since - int64(rescanSlack/time.Second)
	tasks := snap.Query(task.Filter{StatusFilter: classes, Since: since}).Tasks
	for i := len(tasks) - 1; i >= 0; i-- { // oldest first
		if n.target.MatchTask(&tasks[i]) {
			n.offer(tasks[i])
		}
	}
}

// horizon is the oldest end time still notified: one day beyond the
// cache's retention.
func (n *notifier) horizon() int64 {
	return time.Now().Add(-n.env.opts.Retention - 24*time.Hour).Unix()
}

// offer queues a finished task unless it was delivered or is queued.
func (n *notifier) offer(t task.Task) {
	if t.Running() || t.EndTime < n.state.Since || t.EndTime < n.horizon() {
		return
	}
	k := t.RemoteUPID().String()
	if _, done := n.state.Delivered[k]; done || n.queued[k] {
		return
	}
	if len(n.pending) >= n.target.Queue {
		n.dropped++
		n.env.opts.Metrics.dropped.WithLabelValues(n.target.Name).Inc()
		return
	}
	n.pending = append(n.pending, t)
	n.queued[k] = true
	n.env.opts.Metrics.queued.WithLabelValues(n.target.Name).Set(float64(len(n.pending)))
	n.armWindow()
}

// armWindow opens the grouping window unless a window or a retry is
// armed or a delivery is in flight.
func (n *notifier) armWindow() {
	if n.timer == nil && !n.sending {
		n.arm(n.target.GroupWindow)
	}
}

func (n *notifier) arm(d time.Duration) {
	gen := n.gen
	n.timer = time.AfterFunc(d, func() { n.send(windowClosed{gen}) })
}

// flush delivers everything queued as one message, in a goroutine.
func (n *notifier) flush() {
	if n.sending || len(n.pending) == 0 && len(n.stale) == 0 {
		return
	}
	n.inflight, n.pending = n.pending, nil
	n.inStale, n.stale = n.stale, nil
	n.inDropped, n.dropped = n.dropped, 0
	m := tmpl.Message{Target: n.target.Name, Dropped: n.inDropped, Stale: n.inStale}
	for _, t := range n.inflight {
		m.Tasks = append(m.Tasks, messageTask(t))
	}
	m.Title, m.Text = tmpl.Summarize(m)
	ctx, cancel := context.WithTimeout(context.Background(), n.target.Timeout)
	n.sending, n.cancelSend, n.sendDone = true, cancel, make(chan error, 1)
	gen, done, sender, self, root := n.gen, n.sendDone, n.sender, n.self, n.sys.Root
	go func() { // cancelled by stop, which waits for done
		var err error
		func() {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("delivery panicked: %v", v)
				}
			}()
			err = sender.Send(ctx, m)
		}()
		done <- err
		root.Send(self, deliveryFinished{gen: gen})
	}()
}

// messageTask converts a task for a message.
func messageTask(t task.Task) tmpl.Task {
	return tmpl.Task{
		Remote: t.Remote, Node: t.UPID.Node, Type: t.UPID.Type, ID: t.UPID.ID, User: t.UPID.User,
		UPID: t.UPID.String(), Status: t.Status, Class: t.Class().String(),
		Start: time.Unix(t.UPID.StartTime, 0).UTC(), End: time.Unix(t.EndTime, 0).UTC(),
	}
}

// delivered records a delivery that succeeded, or schedules its retry.
func (n *notifier) delivered(err error) {
	n.sending = false
	n.cancelSend()
	name := n.target.Name
	met := n.env.opts.Metrics
	if err != nil {
		n.failures++
		met.failures.WithLabelValues(name).Inc()
		// Back to the front of the queue, within its bound.
		n.pending = append(n.inflight, n.pending...)
		for len(n.pending) > n.target.Queue {
			last := n.pending[len(n.pending)-1]
			delete(n.queued, last.RemoteUPID().String())
			n.pending = n.pending[:len(n.pending)-1]
			n.dropped++
			met.dropped.WithLabelValues(name).Inc()
		}
		n.stale = append(n.inStale, n.stale...)
		n.dropped += n.inDropped
		n.inflight, n.inStale, n.inDropped = nil, nil, 0
		d := retry.Delay(retryBase, retryMax, n.failures)
		ev := n.log.Debug()
		if n.failures == 1 {
			n.failedAt = time.Now()
			ev = n.log.Warn()
		}
		ev.Err(err).Int("failures", n.failures).Int("tasks", len(n.pending)).Int64("retry_in_ms", d.Milliseconds()).Msg("notification not delivered: retrying")
		if n.timer != nil {
			n.timer.Stop()
		}
		n.arm(d)
		return
	}
	n.record()
	if n.failures > 0 {
		n.log.Info().Int("failures", n.failures).Int64("failed_for_ms", time.Since(n.failedAt).Milliseconds()).Msg("notifications delivered again")
	}
	n.log.Debug().Int("tasks", len(n.inflight)).Int("guests", len(n.inStale)).Msg("notification delivered")
	n.failures = 0
	n.inflight, n.inStale, n.inDropped = nil, nil, 0
	if len(n.pending) > 0 || len(n.stale) > 0 {
		n.armWindow()
	}
}

// record notes the delivery in flight as delivered and saves the state.
func (n *notifier) record() {
	name := n.target.Name
	met := n.env.opts.Metrics
	for _, t := range n.inflight {
		k := t.RemoteUPID().String()
		n.state.Delivered[k] = t.EndTime
		delete(n.queued, k)
	}
	for _, g := range n.inStale {
		k := g.Remote + "/" + g.VMID
		n.state.Stale[k] = unixOrZero(g.LastOK)
		delete(n.queued, "guest:"+k)
	}
	n.state.forget(n.horizon() - 86400)
	if err := n.state.save(n.file); err != nil {
		// Kept in memory: this run sends no duplicate; a restart before
		// the next save that succeeds may.
		n.log.Error().Err(err).Str("file", n.file).Msg("notify state not saved")
	}
	met.sent.WithLabelValues(name).Inc()
	met.tasks.WithLabelValues(name).Add(float64(len(n.inflight)))
	met.queued.WithLabelValues(name).Set(float64(len(n.pending)))
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// checkStale asks the guest source for the guests of each stale rule
// and queues those not announced yet (or back to stale after a good
// backup), then rearms itself.
func (n *notifier) checkStale() {
	gen := n.gen
	n.staleTimer = time.AfterFunc(n.env.opts.StaleEvery, func() { n.send(checkStale{gen}) })
	now := time.Now()
	stillStale := map[string]bool{}
	for _, rule := range n.target.Stale {
		for _, g := range n.env.opts.Guests.StaleGuests(now, time.Duration(rule.Hours)*time.Hour) {
			if len(rule.Remotes) > 0 && !slices.Contains(rule.Remotes, g.Remote) {
				continue
			}
			k := g.key()
			if stillStale[k] {
				continue
			}
			stillStale[k] = true
			if last, ok := n.state.Stale[k]; ok && last == unixOrZero(g.LastOK) || n.queued["guest:"+k] {
				continue
			}
			if len(n.stale) >= n.target.Queue {
				n.dropped++
				n.env.opts.Metrics.dropped.WithLabelValues(n.target.Name).Inc()
				continue
			}
			n.queued["guest:"+k] = true
			n.stale = append(n.stale, tmpl.StaleGuest{Remote: g.Remote, Node: g.Node, VMID: g.VMID, Name: g.Name, LastOK: g.LastOK, Hours: rule.Hours})
			n.armWindow()
		}
	}
	for k := range n.state.Stale {
		if !stillStale[k] {
			delete(n.state.Stale, k) // backed up again: announce when it goes stale again
		}
	}
}
