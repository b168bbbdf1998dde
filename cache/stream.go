package cache

import (
	"iter"

	"github.com/taskfleet/taskfleet/task"
)

// Stream is Query without the page in memory: it returns the number of
// all tasks matching f and an iterator over the tasks of the page f
// selects (f.Start, f.Limit; 0 = no limit), newest first, decoded from
// the snapshot one at a time as the iterator runs. The counting and the
// skipping of f.Start happen before Stream returns; the iterator holds
// the snapshot until it ends. It yields the same tasks as Query, and may
// be run once.
func (s *Snapshot) Stream(f task.Filter) (total int, tasks iter.Seq[task.Task]) {
	total, n, m := s.open(f)
	return total, func(yield func(task.Task) bool) {
		if m == nil {
			return
		}
		for k := 0; k < n; k++ {
			cur := m.peek()
			if cur == nil {
				return
			}
			t := cur.src.seg.at(m.d, cur.pos)
			cur.next()
			if !yield(t) {
				return
			}
		}
	}
}
