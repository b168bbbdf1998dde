package actors

import (
	"iter"

	"github.com/taskfleet/taskfleet/task"
)

// StreamTasks is Tasks as an iterator over the latest snapshot (see
// cache.Snapshot.Stream): the total is counted now, the tasks are decoded
// as the iterator runs, and the page is never held in memory.
func (s *Service) StreamTasks(f task.Filter) (total int, tasks iter.Seq[task.Task], err error) {
	snap := s.latest.Load()
	if snap == nil {
		return 0, nil, ErrNotReady
	}
	total, tasks = snap.Stream(f)
	return total, tasks, nil
}
