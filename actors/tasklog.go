package actors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
	"github.com/taskfleet/taskfleet/tasklogs"
)

// maxLogFetches bounds the log requests one poller has in flight; more
// are refused with ErrLogBusy (the API answers 503). Background fetches
// (the backup keeper's) have maxBackgroundLogFetches slots of their own.
const (
	maxLogFetches           = 4
	maxBackgroundLogFetches = 1
)

// ErrLogBusy is returned when a remote's poller already fetches
// maxLogFetches logs.
var ErrLogBusy = errors.New("too many task log requests in flight for this remote")

// ErrNoTaskLog is returned (wrapped) when neither the remote nor the kept
// logs have a task's log.
var ErrNoTaskLog = proxmox.ErrNoTaskLog

// taskLogClient is what a poller needs to fetch logs (*proxmox.Client).
type taskLogClient interface {
	TaskLog(ctx context.Context, upid task.UPID, start, limit int) (proxmox.TaskLog, error)
}

// logFetches are a poller's log requests in flight, each in its own
// goroutine. Stop path: stop cancels them and waits (the poller calls it
// before it closes its client).
type logFetches struct {
	n      int // in flight; changed by the poller only
	bg     int // background ones in flight (not in n)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// taskLogDone tells the poller that one of its log fetches ended.
type taskLogDone struct {
	jobs       *logFetches
	background bool
}

// fetchLog starts fetching a log for the sender of m.
func (p *poller) fetchLog(c actor.Context, m *messages.FetchTaskLog) {
	sender := c.Sender()
	reply := func(r *messages.TaskLogFetched) {
		if sender != nil {
			c.Send(sender, r)
		}
	}
	lc, ok := p.client.(taskLogClient)
	switch {
	case p.client == nil:
		reply(&messages.TaskLogFetched{Err: errors.New("remote client not usable: " + p.health.LastError)})
		return
	case !ok:
		reply(&messages.TaskLogFetched{Err: errors.New("this remote's client cannot fetch task logs")})
		return
	case m.Background && p.logs.bg >= maxBackgroundLogFetches, !m.Background && p.logs.n >= maxLogFetches:
		reply(&messages.TaskLogFetched{Err: ErrLogBusy})
		return
	}
	if p.logs.ctx == nil {
		p.logs.ctx, p.logs.cancel = context.WithCancel(context.Background())
	}
	if m.Background {
		p.logs.bg++
	} else {
		p.logs.n++
	}
	jobs, root, self := &p.logs, c.ActorSystem().Root, c.Self()
	timeout := p.deps.polling.RequestTimeout
	p.logs.wg.Go(func() {
		res := &messages.TaskLogFetched{}
		defer func() {
			if v := recover(); v != nil {
				res = &messages.TaskLogFetched{Err: fmt.Errorf("fetch task log panicked: %v", v)}
			}
			// The slot is freed before the answer goes out, so a sender
			// that asks again on the answer finds it free.
			root.Send(self, &taskLogDone{jobs: jobs, background: m.Background})
			if sender != nil {
				root.Send(sender, res)
			}
		}()
		ctx, cancel := context.WithTimeout(jobs.ctx, timeout)
		defer cancel()
		res.Log, res.Err = lc.TaskLog(ctx, m.UPID, m.Start, m.Limit)
	})
}

// logDone counts a finished log fetch of this incarnation.
func (p *poller) logDone(m *taskLogDone) {
	switch {
	case m.jobs != &p.logs:
	case m.background && p.logs.bg > 0:
		p.logs.bg--
	case !m.background && p.logs.n > 0:
		p.logs.n--
	}
}

// stopLogs cancels the log fetches in flight and waits for them.
func (p *poller) stopLogs() {
	if p.logs.cancel != nil {
		p.logs.cancel()
	}
	p.logs.wg.Wait()
}

// TaskLog returns lines [start, start+limit) of a task's log (limit 0:
// all, at most proxmox.MaxTaskLogLines) and the log's line count: from
// the kept logs for a failed task taskfleet kept, else from the remote
// through its poller. active tells whether the cache shows the task
// running.
func (s *Service) TaskLog(ctx context.Context, remote string, upid task.UPID, start, limit int) (log proxmox.TaskLog, fromCache, active bool, err error) {
	if !s.HasRemote(remote) {
		return proxmox.TaskLog{}, false, false, fmt.Errorf("task log: %w %q", ErrUnknownRemote, remote)
	}
	active = slices.ContainsFunc(s.latest.Load().Running(remote), func(t task.Task) bool { return t.UPID == upid })
	if s.env.Logs != nil && !active {
		lines, ok, err := s.env.Logs.Get(remote, upid)
		if err != nil {
			s.env.Log.Warn().Err(err).Str("remote", remote).Msg("kept task log unreadable: asking the remote")
		}
		if ok {
			return page(lines, start, limit), true, false, nil
		}
	}
	res, err := s.request(ctx, s.childPID(PollerName(remote)), &messages.FetchTaskLog{UPID: upid, Start: start, Limit: limit})
	if err != nil {
		return proxmox.TaskLog{}, false, active, fmt.Errorf("task log: %w", err)
	}
	r, ok := res.(*messages.TaskLogFetched)
	if !ok {
		return proxmox.TaskLog{}, false, active, fmt.Errorf("task log: unexpected answer %T", res)
	}
	return r.Log, false, active, r.Err
}

// page returns lines [start, start+limit) of a kept log.
func page(lines []string, start, limit int) proxmox.TaskLog {
	from := min(start, len(lines))
	to := len(lines)
	if limit > 0 {
		to = min(to, from+limit)
	}
	out := proxmox.TaskLog{Total: len(lines), Lines: make([]proxmox.TaskLogLine, 0, to-from)}
	for i := from; i < to; i++ {
		out.Lines = append(out.Lines, proxmox.TaskLogLine{N: i + 1, T: lines[i]})
	}
	return out
}

// keepLogs is the task-log keeper: it subscribes to the events hub for
// tasks that finished with an error, fetches each one's whole log through
// the remote's poller, one at a time, and keeps it in the store.
//
// Stop path: cancel ctx; the goroutine ends after the fetch in flight (its
// request ends with ctx), ends its subscription and closes done. It does
// not wait for the hub to close: the host closes it after Stop.
func (s *Service) keepLogs(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	defer func() {
		if v := recover(); v != nil {
			s.env.Log.Error().Interface("panic", v).Msg("task log keeper failed: failed tasks' logs are no longer kept")
		}
	}()
	hub, store := s.env.Events, s.env.Logs
	failed := func(e *events.Event) bool { return e.Type == events.Finished && e.Task.Class() == task.StatusError }
	var after uint64
	resume := false
	for ctx.Err() == nil {
		sub, err := hub.Subscribe(ctx, events.SubscribeOptions{Match: failed, Buffer: 1024, Resume: resume, After: after})
		if err != nil {
			return
		}
		for {
			e, ok := nextEvent(ctx, sub)
			if !ok {
				break
			}
			after, resume = e.ID, true
			if e.Type != events.Finished {
				continue
			}
			lines, err := s.wholeLog(ctx, e.Task.Remote, e.Task.UPID, false)
			if err == nil {
				err = store.Put(e.Task.Remote, e.Task.UPID, lines)
			}
			if err != nil && ctx.Err() == nil {
				s.env.Log.Warn().Err(err).Str("remote", e.Task.Remote).Str("upid", e.Task.UPID.String()).Msg("failed task's log not kept")
			}
		}
		if sub.Err() == nil || ctx.Err() != nil {
			sub.Close()
			return
		}
		// Dropped (too slow) or closed: resume from the last event seen.
	}
}

// nextEvent returns sub's next event; false once sub has ended or ctx ends.
func nextEvent(ctx context.Context, sub *events.Subscription) (events.Event, bool) {
	select {
	case e, ok := <-sub.C:
		return e, ok
	case <-ctx.Done():
		return events.Event{}, false
	}
}

// wholeLog fetches a task's whole log from the remote; background: in
// the poller's background slot (the backup keeper's).
func (s *Service) wholeLog(ctx context.Context, remote string, upid task.UPID, background bool) ([]string, error) {
	res, err := s.request(ctx, s.childPID(PollerName(remote)), &messages.FetchTaskLog{UPID: upid, Background: background})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*messages.TaskLogFetched)
	if !ok {
		return nil, fmt.Errorf("unexpected answer %T", res)
	}
	if r.Err != nil {
		return nil, r.Err
	}
	lines := make([]string, len(r.Log.Lines))
	for i, l := range r.Log.Lines {
		lines[i] = l.T
	}
	return lines, nil
}

// startKeeper starts the task-log keeper when there are a hub and a store.
func (s *Service) startKeeper() {
	if s.env.Events == nil || s.env.Logs == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.keeperStop = func() { cancel(); <-done }
	go s.keepLogs(ctx, done)
}

// stopKeeper stops the keeper and waits for it.
func (s *Service) stopKeeper() {
	if s.keeperStop != nil {
		s.keeperStop()
	}
}

// openTaskLogs opens the kept logs in the cache directory; without them
// (an unwritable directory) logs are only read from the remotes.
func openTaskLogs(co cache.Options) *tasklogs.Store {
	st, err := tasklogs.Open(tasklogs.Options{
		Dir: filepath.Join(co.Dir, "tasklogs"), Rotation: co.Rotation, Retention: co.Retention,
		Now: co.Now, Logger: co.Logger.With().Str("component", "tasklogs").Logger(),
	})
	if err != nil {
		co.Logger.Warn().Err(err).Msg("failed tasks' logs will not be kept")
		return nil
	}
	return st
}
