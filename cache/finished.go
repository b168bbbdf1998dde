package cache

import "github.com/taskfleet/taskfleet/task"

// Finished reports whether the snapshot holds the task u of remote as
// finished. It looks the task up by its start time in each segment whose
// start times span it: no allocation, O(segments · log n), where a Query
// for the same answer builds a source and a cursor per segment.
func (s *Snapshot) Finished(remote string, u task.UPID) bool {
	d := s.dict
	rc, ok := d.remoteIdx.lookup(d.remotes, remote)
	if !ok {
		return false
	}
	for _, seg := range s.segs {
		if u.StartTime < seg.minStart || u.StartTime > seg.maxStart {
			continue
		}
		lo, hi := seg.startRange(u.StartTime, u.StartTime)
		for i := lo; i < hi; i++ {
			r := &seg.recs[i]
			// Dead positions are running copies (end 0) today; the check
			// keeps Finished right should a finished one ever die.
			if r.remote == rc && r.end != 0 && !seg.dead.has(i) && d.upid(r, seg.raw(i)) == u {
				return true
			}
		}
	}
	return false
}
