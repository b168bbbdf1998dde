package events

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/task"
)

// Defaults for the zero fields of Options.
const (
	DefaultRing           = 4096
	DefaultInbox          = 256
	DefaultBuffer         = 256
	DefaultMaxBatchEvents = 1024
)

// ErrTooSlow is why a subscription ended when its buffer was full.
var ErrTooSlow = errors.New("event subscriber too slow: its buffer was full")

// ErrClosed is why a subscription ended when the Hub was closed; Subscribe
// returns it after Close.
var ErrClosed = errors.New("event hub closed")

// Options configure a Hub.
type Options struct {
	Ring  int // events kept for resuming; default DefaultRing
	Inbox int // publishes queued for the Hub's goroutine; default DefaultInbox
	// MaxBatchEvents bounds the changes of one publish: a batch with more
	// (a backfill) becomes one Reload event; default DefaultMaxBatchEvents.
	MaxBatchEvents int
	Now            func() time.Time // default time.Now
	Logger         zerolog.Logger   // transitions (a subscriber dropped); zero value: none
}

// Stats are the Hub's counters, for metrics and tests.
type Stats struct {
	Events      uint64 // events numbered since start
	Subscribers int    // subscribed now
	Dropped     int64  // subscribers dropped because their buffer was full
	Lost        int64  // publishes dropped because the inbox was full
	LastID      uint64 // the ID of the newest event (the first ID minus one before any)
}

// Hub numbers the changes the cache writer publishes and fans them out.
// See the package documentation. Its methods are safe for concurrent use.
type Hub struct {
	opts   Options
	in     chan Published
	subs   chan subscribeRequest
	unsubs chan *Subscription
	quit   chan struct{}
	done   chan struct{}
	closed atomic.Bool

	lost    atomic.Int64 // publishes dropped, total
	missed  atomic.Bool  // a publish was dropped since the goroutine last looked
	dropped atomic.Int64
	lastID  atomic.Uint64 // last, for Stats
	nsubs   atomic.Int64  // len(set), for Stats

	// Owned by the goroutine (run).
	ring  []Event // circular, len <= opts.Ring
	head  int     // index of the oldest when full
	last  uint64  // ID of the newest event
	first uint64  // ID of the first event of this run
	set   map[*Subscription]struct{}
}

// New starts a Hub; Close stops it.
func New(opts Options) *Hub {
	if opts.Ring <= 0 {
		opts.Ring = DefaultRing
	}
	if opts.Inbox <= 0 {
		opts.Inbox = DefaultInbox
	}
	if opts.MaxBatchEvents <= 0 {
		opts.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Hub{
		opts:   opts,
		in:     make(chan Published, opts.Inbox),
		subs:   make(chan subscribeRequest),
		unsubs: make(chan *Subscription),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		set:    map[*Subscription]struct{}{},
	}
	// IDs of this run start above any ID of an earlier run (one per
	// microsecond would have to be used up for them to meet).
	h.first = uint64(max(opts.Now().UnixMicro(), 1))
	h.last = h.first - 1
	h.lastID.Store(h.last)
	go h.run()
	return h
}

// Publish hands the Hub a change. It never blocks: when the inbox is full
// the publish is dropped, counted, and subscribers get a Reload event.
// Publish after Close does nothing.
func (h *Hub) Publish(p Published) {
	if h.closed.Load() {
		return
	}
	select {
	case h.in <- p:
	default:
		h.lost.Add(1)
		h.missed.Store(true)
	}
}

// Close stops the Hub and waits for its goroutine; every subscription ends
// with ErrClosed. Close is idempotent.
func (h *Hub) Close() {
	if h.closed.CompareAndSwap(false, true) {
		close(h.quit)
	}
	<-h.done
}

// Stats returns the Hub's counters. It never waits for the Hub's
// goroutine (metrics read it at any time, also after Close).
func (h *Hub) Stats() Stats {
	last := h.lastID.Load()
	return Stats{Events: last - (h.first - 1), Subscribers: int(h.nsubs.Load()), Dropped: h.dropped.Load(), Lost: h.lost.Load(), LastID: last}
}

// SubscribeOptions select what a subscription gets.
type SubscribeOptions struct {
	// Match selects the events to deliver (Reload events are always
	// delivered); nil: all. It runs in the Hub's goroutine: keep it short
	// and free of blocking.
	Match func(*Event) bool
	// Buffer is how many events may wait for the subscriber before it is
	// dropped; default DefaultBuffer.
	Buffer int
	// Resume, with After, asks for the events after the one with ID After
	// (SSE's Last-Event-ID) before the new ones.
	Resume bool
	After  uint64
}

// Subscription is one subscriber's stream. Read C until it is closed, then
// Err says why; Close ends it early.
type Subscription struct {
	// C delivers the events in ID order. It is closed when the
	// subscription ends.
	C <-chan Event
	// Last is the ID of the newest event when the subscription started:
	// a client that has seen nothing yet resumes from it.
	Last uint64

	c   chan Event
	h   *Hub
	m   func(*Event) bool
	err atomic.Pointer[error]
}

// Err returns why C was closed: ErrTooSlow, ErrClosed, or nil after Close
// (or while C is open).
func (s *Subscription) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close ends the subscription: C is closed (events in it may still be
// read). It returns at once if the Hub has stopped.
func (s *Subscription) Close() {
	select {
	case s.h.unsubs <- s:
	case <-s.h.done:
	}
}

type subscribeRequest struct {
	opts  SubscribeOptions
	reply chan *Subscription
}

// Subscribe starts a subscription. It fails when ctx ends first or the Hub
// is closed.
func (h *Hub) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	req := subscribeRequest{opts: opts, reply: make(chan *Subscription, 1)}
	select {
	case h.subs <- req:
	case <-h.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("subscribe to events: %w", ctx.Err())
	}
	return <-req.reply, nil
}

// run is the Hub's goroutine: the only owner of the ring and the
// subscribers.
func (h *Hub) run() {
	defer close(h.done)
	for {
		select {
		case p := <-h.in:
			if h.missed.Swap(false) {
				h.emit(Event{Type: Reload, Reason: "events lost: the event hub fell behind", At: h.opts.Now()})
			}
			h.take(p)
		case req := <-h.subs:
			req.reply <- h.subscribe(req.opts)
		case s := <-h.unsubs:
			if _, ok := h.set[s]; ok {
				h.end(s, nil)
			}
		case <-h.quit:
			for s := range h.set {
				h.end(s, ErrClosed)
			}
			return
		}
	}
}

// take turns a publish into events.
func (h *Hub) take(p Published) {
	at := h.opts.Now()
	if p.Reload != "" {
		h.emit(Event{Type: Reload, Reason: p.Reload, At: at})
		return
	}
	evs, ok := h.changes(p, at)
	if !ok {
		h.emit(Event{Type: Reload, Reason: fmt.Sprintf("more than %d changes of remote %s at once", h.opts.MaxBatchEvents, p.Remote), At: at})
		return
	}
	for _, e := range evs {
		h.emit(e)
	}
}

// changes compares the batch's tasks in the snapshots before and after
// it. It reports false when there are more than MaxBatchEvents or the
// comparison failed (a bug, logged): the caller then sends a Reload.
func (h *Hub) changes(p Published, at time.Time) (evs []Event, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			h.opts.Logger.Error().Interface("panic", v).Str("remote", p.Remote).Msg("compare snapshots for events")
			evs, ok = nil, false
		}
	}()
	if p.Prev == nil || p.Next == nil {
		return nil, len(p.Tasks) == 0
	}
	seen := make(map[task.UPID]bool, len(p.Tasks))
	for i := range p.Tasks {
		t := &p.Tasks[i]
		if seen[t.UPID] {
			continue
		}
		seen[t.UPID] = true
		now, inNext := lookup(p.Next, t)
		if !inNext {
			continue // not kept (older than the retention)
		}
		was, inPrev := lookup(p.Prev, t)
		var typ Type
		switch {
		case !now.Running() && (!inPrev || was.Running()):
			typ = Finished
		case now.Running() && !inPrev:
			typ = Started
		default:
			continue
		}
		if len(evs) == h.opts.MaxBatchEvents {
			return nil, false
		}
		evs = append(evs, Event{Type: typ, Task: now, At: at})
	}
	return evs, true
}

// lookup finds t's task in s.
func lookup(s *cache.Snapshot, t *task.Task) (task.Task, bool) {
	f := task.Filter{Remote: t.Remote, Node: t.UPID.Node, Since: t.UPID.StartTime, Until: t.UPID.StartTime}
	if f.Since == 0 {
		f.Since, f.Until = 0, 0 // no start-time bound can express 0
	}
	for _, c := range s.Query(f).Tasks {
		if c.UPID == t.UPID {
			return c, true
		}
	}
	return task.Task{}, false
}

// emit numbers e, keeps it in the ring and offers it to the subscribers.
func (h *Hub) emit(e Event) {
	h.last++
	h.lastID.Store(h.last)
	e.ID = h.last
	if len(h.ring) < h.opts.Ring {
		h.ring = append(h.ring, e)
	} else {
		h.ring[h.head] = e
		h.head = (h.head + 1) % len(h.ring)
	}
	for s := range h.set {
		h.offer(s, &e)
	}
}

// offer sends e to s if s wants it, dropping s when its buffer is full.
func (h *Hub) offer(s *Subscription, e *Event) {
	if e.Type != Reload && s.m != nil && !s.m(e) {
		return
	}
	select {
	case s.c <- *e:
	default:
		h.dropped.Add(1)
		h.opts.Logger.Debug().Int("buffer", cap(s.c)).Msg("event subscriber dropped: too slow")
		h.end(s, ErrTooSlow)
	}
}

// end removes s and closes its channel.
func (h *Hub) end(s *Subscription, why error) {
	delete(h.set, s)
	h.nsubs.Store(int64(len(h.set)))
	if why != nil {
		s.err.Store(&why)
	}
	close(s.c)
}

// subscribe registers a subscriber and queues what it resumes.
func (h *Hub) subscribe(o SubscribeOptions) *Subscription {
	var replay []Event
	reload := false
	if o.Resume && o.After != h.last {
		oldest := h.last + 1 - uint64(len(h.ring)) // ID of the oldest event kept
		if o.After+1 < oldest || o.After > h.last {
			reload = true
		} else {
			for i := range h.ring {
				e := &h.ring[(h.head+i)%len(h.ring)]
				if e.ID > o.After && (e.Type == Reload || o.Match == nil || o.Match(e)) {
					replay = append(replay, *e)
				}
			}
		}
	}
	// The buffer holds the replay on top of the subscriber's own buffer:
	// a resume from inside the ring misses nothing.
	c := make(chan Event, o.Buffer+len(replay)+1)
	if reload {
		c <- Event{ID: h.last, Type: Reload, Reason: "resume point is no longer kept: reload", At: h.opts.Now()}
	}
	for _, e := range replay {
		c <- e
	}
	s := &Subscription{C: c, c: c, h: h, m: o.Match, Last: h.last}
	h.set[s] = struct{}{}
	h.nsubs.Store(int64(len(h.set)))
	return s
}
