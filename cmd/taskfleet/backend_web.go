package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/task"
)

// logTimeout bounds a log request that has no deadline of its own.
const logTimeout = time.Minute

var (
	_ api.EventBackend = (*backend)(nil)
	_ api.LogBackend   = (*backend)(nil)
)

// Subscribe implements api.EventBackend with the daemon's events hub.
func (b *backend) Subscribe(ctx context.Context, opts events.SubscribeOptions) (*events.Subscription, error) {
	if b.events == nil || b.service() == nil {
		return nil, fmt.Errorf("event stream: %w", errNotStarted)
	}
	return b.events.Subscribe(ctx, opts)
}

// TaskLog implements api.LogBackend: the service asks the remote's poller,
// or reads the log it kept of a failed task.
func (b *backend) TaskLog(ctx context.Context, remote string, upid task.UPID, start, limit int) (api.TaskLog, error) {
	s := b.service()
	if s == nil {
		return api.TaskLog{}, fmt.Errorf("task log: %w", errNotStarted)
	}
	r, ok := b.remote(remote)
	if !ok {
		return api.TaskLog{}, fmt.Errorf("%w '%s'", api.ErrUnknownRemote, remote)
	}
	if upid.Kind != r.Type {
		return api.TaskLog{}, fmt.Errorf("%w: remote '%s' is a %s remote and the upid a %s one", api.ErrNoSuchTask, remote, r.Type, upid.Kind)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, logTimeout)
		defer cancel()
	}
	log, cached, active, err := s.TaskLog(ctx, remote, upid, start, limit)
	switch {
	case errors.Is(err, actors.ErrUnknownRemote):
		return api.TaskLog{}, fmt.Errorf("%w '%s'", api.ErrUnknownRemote, remote)
	case errors.Is(err, actors.ErrNoTaskLog):
		return api.TaskLog{}, fmt.Errorf("%w: %w", api.ErrNoSuchTask, err)
	case errors.Is(err, actors.ErrLogBusy):
		return api.TaskLog{}, fmt.Errorf("%w: %w", api.ErrNotReady, err)
	case err != nil:
		return api.TaskLog{}, err
	}
	out := api.TaskLog{Total: log.Total, Source: "remote", Active: active, Lines: make([]api.LogLine, len(log.Lines))}
	if cached {
		out.Source = "cache"
	}
	for i, l := range log.Lines {
		out.Lines[i] = api.LogLine{N: l.N, T: l.T}
	}
	return out, nil
}
