package main

import (
	"context"
	"iter"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/task"
)

var _ api.TaskStreamer = (*backend)(nil)

// StreamTasks implements api.TaskStreamer: lists are encoded straight
// from the snapshot.
func (b *backend) StreamTasks(_ context.Context, f task.Filter) (int, iter.Seq[task.Task], error) {
	s := b.service()
	if s == nil {
		return 0, nil, errNotStarted
	}
	n, tasks, err := s.StreamTasks(f)
	return n, tasks, notReady(err)
}
