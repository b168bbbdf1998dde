package actors

import (
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/task"
)

// writerActor is the cache writer: the only owner of the cache.Writer, so
// the archive needs no locks. It applies batches in arrival order; after
// each the cache publishes a new immutable snapshot for readers.
//
// Started opens (and so recovers) the cache from disk, which makes a
// restart after a panic a recovery: a batch lost in flight was never
// acknowledged, its cutoffs never advanced, and its poller fetches it again.
//
// Stop path: Stopping applies the journal and syncs (cache.Writer.Close)
// and hands the result to the supervisor (closed), which answers Shutdown
// with it. The supervisor poisons the writer so that queued batches are
// applied first.
//
// Events: after each change it hands the events hub the snapshots before
// and after it (events.Hub.Publish never blocks).
type writerActor struct {
	opts    cache.Options
	log     zerolog.Logger
	metrics *metrics.Metrics
	hook    func(msg any, applied bool) // test knob: called before each message and after a batch is applied; may panic
	opened  func()                      // called once the cache is open
	health  *writerHealth               // whether writes succeed; outlives this incarnation
	events  *events.Hub                 // nil: none
	closed  func(error)                 // called with the result of the final close
	w       *cache.Writer
	syncs   int64 // w's successful fsyncs as of the last noteWrite
	// finished counts the finished tasks each batch adds (outcomes.go).
	finished *metrics.FinishedRecorder
}

func newWriter(opts cache.Options, log zerolog.Logger, m *metrics.Metrics, hook func(any, bool), opened func(), closed func(error), health *writerHealth, hub *events.Hub) actor.Producer {
	return func() actor.Actor {
		return &writerActor{opts: opts, log: log, metrics: m, hook: hook, opened: opened, closed: closed, health: health, events: hub}
	}
}

// Receive implements actor.Actor.
func (a *writerActor) Receive(c actor.Context) {
	if a.hook != nil {
		a.hook(c.Message(), false)
	}
	switch m := c.Message().(type) {
	case *actor.Started:
		w, err := cache.Open(a.opts)
		if err != nil {
			a.noteWrite(err) // a disk that cannot be opened is failing too
			// Escalate to supervision: restarted with backoff, and the
			// failure is logged there.
			panic(err)
		}
		a.w = w
		a.finished = a.metrics.NewFinishedRecorder()
		declareFinished(a.finished, w.Latest().Load())
		a.noteWrite(nil) // a reopen that wrote (a merge, a repair) shows the disk is back
		a.opened()
		a.observe()
	case *actor.Stopping:
		// The close error (the final merge and sync) is the supervisor's
		// to report: Stop returns it.
		a.closed(a.close())
	case *actor.Restarting:
		// Recovery comes from disk in the next Started; whatever this
		// incarnation held in memory may be inconsistent after a panic.
		a.abandon()
	case *messages.ApplyBatch:
		prev := a.w.Latest().Load()
		err := a.apply(m)
		countFinished(a.finished, prev, a.w.Latest().Load(), m.Remote, m.Tasks)
		a.noteWrite(err)
		a.publish(prev, err, events.Published{Remote: m.Remote, Tasks: m.Tasks})
		if a.hook != nil {
			a.hook(m, true)
		}
		c.Respond(&messages.BatchApplied{Seq: m.Seq, Err: err})
		if errors.Is(err, cache.ErrFailed) {
			// The cache refuses writes until it is reopened: escalate, so
			// supervision reopens it from disk, with backoff if the cause
			// (a full disk) persists.
			panic(err)
		}
	case *messages.TrackTask:
		prev := a.w.Latest().Load()
		err := a.w.Track(m.Remote, m.UPID)
		a.noteWrite(err)
		a.publish(prev, err, events.Published{Remote: m.Remote, Tasks: []task.Task{{Remote: m.Remote, UPID: m.UPID}}})
		if err != nil {
			err = fmt.Errorf("track task: %w", err)
		}
		c.Respond(&messages.TrackTaskResult{Err: err})
	case *messages.UntrackTask:
		err := a.w.Untrack(m.Remote, m.UPID)
		a.noteWrite(err)
		if err != nil {
			err = fmt.Errorf("untrack task: %w", err)
		}
		c.Respond(&messages.UntrackTaskResult{Err: err})
	case *messages.DropRemote:
		a.finished.Forget(m.Remote) // in order with the remote's last batches
		err := a.w.DropRemote(m.Remote)
		a.noteWrite(err)
		if err != nil {
			a.log.Error().Err(err).Str("remote", m.Remote).Msg("drop remote from cache")
		} else if a.events != nil {
			a.events.Publish(events.Published{Remote: m.Remote, Reload: "remote " + m.Remote + " was removed"})
		}
	case *messages.CheckRotation:
		// The cache logs a rotation itself.
		_, err := a.w.MaybeRotate()
		a.noteWrite(err)
		if err != nil {
			a.log.Error().Err(err).Msg("rotate archive")
		}
	case *messages.ApplyJournal:
		err := a.w.ApplyJournal()
		a.noteWrite(err)
		if err != nil {
			a.log.Error().Err(err).Msg("apply journal")
		}
	}
	a.observe()
}

func (a *writerActor) apply(m *messages.ApplyBatch) error {
	b := cache.Batch{Remote: m.Remote, Tasks: m.Tasks}
	for _, n := range m.Nodes {
		b.Nodes = append(b.Nodes, cache.NodeResult{Node: n.Node, OK: n.OK})
	}
	if err := a.w.Apply(b); err != nil {
		return err
	}
	for _, u := range m.Untrack {
		if err := a.w.Untrack(m.Remote, u); err != nil {
			return fmt.Errorf("untrack %s: %w", u, err)
		}
	}
	return nil
}

// noteWrite records the outcome of a cache call (writerhealth.go): a
// disk error, or a success that reached the disk (an fsync succeeded).
// A call that wrote nothing (a rotation not due, a batch of nothing new
// to merge) says nothing about the disk.
func (a *writerActor) noteWrite(err error) {
	wrote := false
	if a.w != nil {
		n := a.w.Stats().Syncs
		wrote, a.syncs = n > a.syncs, n
	}
	if a.health != nil && (err != nil || wrote) {
		a.health.note(err, a.log, a.metrics)
	}
}

// publish hands the hub a change that was applied (err == nil).
func (a *writerActor) publish(prev *cache.Snapshot, err error, p events.Published) {
	if a.events == nil || err != nil {
		return
	}
	p.Prev, p.Next = prev, a.w.Latest().Load()
	a.events.Publish(p)
}

func (a *writerActor) observe() {
	if a.w != nil {
		st := a.w.Stats()
		a.metrics.ObserveCache(metrics.CacheStats{
			Tasks: st.Tasks, JournalBytes: st.JournalBytes,
			Files: st.Files, Rotations: st.Rotations, Corruptions: st.Corruptions,
			SlowSyncs: st.SlowSyncs,
		})
	}
}

func (a *writerActor) close() error {
	if a.w == nil {
		return nil
	}
	err := a.w.Close()
	a.w = nil
	return err
}

func (a *writerActor) abandon() {
	if a.w == nil {
		return
	}
	if err := a.w.Abandon(); err != nil {
		a.log.Error().Err(err).Msg("abandon cache after failure")
	}
	a.w = nil
}
