package cache

import (
	"slices"
	"sort"

	"github.com/taskfleet/taskfleet/task"
)

// Sorted runs of tasks: sorting, merging and looking tasks up. A segment is
// a run with indexes (segment.go).

// run is a sorted list of tasks: a segment without its indexes.
type run struct {
	recs []rec
	raws []rawUPID // sorted by pos
}

func (s *run) len() int { return len(s.recs) }

// raw returns the kept UPID of the task at pos, or nil when it is canonical.
func (s *run) raw(pos int) *task.UPID {
	if s.recs[pos].flags&flagRaw == 0 {
		return nil
	}
	i := sort.Search(len(s.raws), func(i int) bool { return s.raws[i].pos >= uint32(pos) })
	return &s.raws[i].upid
}

// find returns the position of the task r (same remote and UPID) or -1.
func (s *run) find(r *rec, raw *task.UPID) int {
	recs := s.recs
	n := len(recs)
	if n == 0 || r.start > recs[0].start || r.start < recs[n-1].start {
		return -1
	}
	// recs are sorted by start time descending: find the first at or
	// before r's (sort.Search without the closure, on the ingest path).
	i, hi := 0, n
	for i < hi {
		m := int(uint(i+hi) >> 1)
		if recs[m].start > r.start {
			i = m + 1
		} else {
			hi = m
		}
	}
	for ; i < len(s.recs) && s.recs[i].start == r.start; i++ {
		if sameTask(&s.recs[i], s.raw(i), r, raw) {
			return i
		}
	}
	return -1
}

// markKnown clears keep[i] for every task b.recs[i] that s holds too. Both
// runs are sorted. With a Bloom filter, it searches s only for the tasks
// the filter does not rule out; without, it walks both runs together,
// galloping through s.
func (seg *segment) markKnown(b *run, keep []bool) {
	s := &seg.run
	n := len(s.recs)
	if n == 0 || b.len() == 0 {
		return
	}
	hiStart, loStart := s.recs[0].start, s.recs[n-1].start
	// b's tasks within s's start times.
	i := sort.Search(b.len(), func(i int) bool { return b.recs[i].start <= hiStart })
	if seg.filter.words != nil {
		for ; i < b.len() && b.recs[i].start >= loStart; i++ {
			if seg.filter.mayContain(taskHash(&b.recs[i])) && s.find(&b.recs[i], b.raw(i)) >= 0 {
				keep[i] = false
			}
		}
		return
	}
	j := 0
	for ; i < b.len() && b.recs[i].start >= loStart; i++ {
		t := b.recs[i].start
		if s.recs[j].start > t { // gallop to the first task of s at or before t
			step := 1
			for j+step < n && s.recs[j+step].start > t {
				j += step
				step *= 2
			}
			hi := min(j+step, n)
			for j+1 < hi { // s.recs[j].start > t; find the first index not after t
				m := int(uint(j+hi) >> 1)
				if s.recs[m].start > t {
					j = m
				} else {
					hi = m
				}
			}
			j++
		}
		for k := j; k < n && s.recs[k].start == t; k++ {
			if sameTask(&s.recs[k], s.raw(k), &b.recs[i], b.raw(i)) {
				keep[i] = false
				break
			}
		}
	}
}

// filter returns the tasks of r whose keep flag is set.
func (r *run) filter(keep []bool) run {
	out := run{recs: make([]rec, 0, len(r.recs))}
	for i := range r.recs {
		if !keep[i] {
			continue
		}
		if raw := r.raw(i); raw != nil {
			out.raws = append(out.raws, rawUPID{pos: uint32(len(out.recs)), upid: *raw})
		}
		out.recs = append(out.recs, r.recs[i])
	}
	return out
}

// startRange returns the positions [lo, hi) of tasks started within
// [since, until].
func (s *run) startRange(since, until int64) (lo, hi int) {
	lo = sort.Search(len(s.recs), func(i int) bool { return s.recs[i].start <= until })
	hi = sort.Search(len(s.recs), func(i int) bool { return s.recs[i].start < since })
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// sortRun sorts recs (with their raw UPIDs, keyed by index into recs) into
// list order and drops repeated tasks, keeping the first occurrence. It
// takes recs over: the run may use it as its storage.
func sortRun(d *dict, recs []rec, raws map[int]*task.UPID) run {
	n := len(recs)
	if order := runOrder(d, recs, raws); order != 0 {
		// Already sorted, newest first (as remotes list tasks) or oldest
		// first, without repeats: no copy, no sort.
		if cap(recs)-len(recs) > len(recs)/8 {
			recs = slices.Clone(recs) // do not keep an append's spare capacity
		}
		out := run{recs: recs}
		if order < 0 {
			slices.Reverse(recs)
		}
		for i, u := range raws {
			if u != nil && i < n {
				if order < 0 {
					i = n - 1 - i
				}
				out.raws = append(out.raws, rawUPID{pos: uint32(i), upid: *u})
			}
		}
		slices.SortFunc(out.raws, func(a, b rawUPID) int { return int(a.pos) - int(b.pos) })
		return out
	}
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	rawOf := func(i int32) *task.UPID {
		if recs[i].flags&flagRaw == 0 {
			return nil
		}
		return raws[int(i)]
	}
	// Sort by start time first (cheap; nothing to do when the start times
	// are already monotonic, as remotes list them), then order each group
	// of equal start times by the full comparison, which renders UPID
	// texts. The index breaks ties, so the first of repeated tasks stays
	// first.
	switch startOrder(recs) {
	case 1:
	case -1:
		slices.Reverse(idx)
	default:
		slices.SortFunc(idx, func(a, b int32) int {
			sa, sb := recs[a].start, recs[b].start
			switch {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return int(a - b)
		})
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && recs[idx[j]].start == recs[idx[i]].start {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(idx[i:j], func(a, b int32) int {
				if c := d.cmp(&recs[a], rawOf(a), &recs[b], rawOf(b)); c != 0 {
					return c
				}
				return int(a - b)
			})
		}
		i = j
	}
	out := run{recs: make([]rec, 0, n)}
	for k, i := range idx {
		r := &recs[i]
		if k > 0 {
			p := idx[k-1]
			if recs[p].start == r.start && sameTask(&recs[p], rawOf(p), r, rawOf(i)) {
				continue
			}
		}
		if raw := rawOf(i); raw != nil {
			out.raws = append(out.raws, rawUPID{pos: uint32(len(out.recs)), upid: *raw})
		}
		out.recs = append(out.recs, *r)
	}
	return out
}

// runOrder returns 1 when recs are in list order, -1 when they are in the
// reverse order, each task once, and 0 otherwise. UPID texts are only
// rendered for equal start times.
func runOrder(d *dict, recs []rec, raws map[int]*task.UPID) int {
	if len(recs) < 2 {
		return 1
	}
	rawOf := func(i int) *task.UPID {
		if recs[i].flags&flagRaw == 0 {
			return nil
		}
		return raws[i]
	}
	order := 0
	for i := 1; i < len(recs); i++ {
		a, b := &recs[i-1], &recs[i]
		c := 0
		switch {
		case a.start > b.start:
			c = -1
		case a.start < b.start:
			c = 1
		default:
			c = d.cmp(a, rawOf(i-1), b, rawOf(i))
		}
		switch {
		case c == 0:
			return 0 // a repeat
		case order == 0:
			order = c
		case c != order:
			return 0
		}
	}
	return -order
}

// startOrder returns 1 when the start times of recs never increase, -1
// when they never decrease (and do not all equal), else 0.
func startOrder(recs []rec) int {
	down, up := true, true
	for i := 1; i < len(recs); i++ {
		down = down && recs[i].start <= recs[i-1].start
		up = up && recs[i].start >= recs[i-1].start
	}
	switch {
	case down:
		return 1
	case up:
		return -1
	}
	return 0
}

// runOf returns the tasks of s in [lo, hi) as a run sharing nothing with s.
func (s *run) runOf(lo, hi int) run {
	out := run{recs: slices.Clone(s.recs[lo:hi])}
	for _, rw := range s.raws {
		if int(rw.pos) >= lo && int(rw.pos) < hi {
			out.raws = append(out.raws, rawUPID{pos: rw.pos - uint32(lo), upid: rw.upid})
		}
	}
	return out
}

// mergeRuns merges sorted segments into one run. A task present in more
// than one keeps the copy of the earliest segment in segs.
func mergeRuns(d *dict, segs ...*run) run {
	if len(segs) == 2 {
		return mergeTwo(d, segs[0], segs[1])
	}
	total := 0
	for _, s := range segs {
		total += s.len()
	}
	out := run{recs: make([]rec, 0, total)}
	heads := make([]int, len(segs))
	for {
		best := -1
	pick:
		for i, s := range segs {
			if heads[i] >= s.len() {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			b := segs[best]
			switch c := d.cmp(&s.recs[heads[i]], s.raw(heads[i]), &b.recs[heads[best]], b.raw(heads[best])); {
			case c < 0:
				best = i
			case c == 0:
				// The same task again: keep the earlier segment's copy
				// and look at the heads afresh.
				heads[i]++
				best = -1
				goto pick
			}
		}
		if best < 0 {
			return out
		}
		s := segs[best]
		p := heads[best]
		heads[best]++
		if raw := s.raw(p); raw != nil {
			out.raws = append(out.raws, rawUPID{pos: uint32(len(out.recs)), upid: *raw})
		}
		out.recs = append(out.recs, s.recs[p])
	}
}

// mergeTwo is mergeRuns of two runs, the common case, with the start
// times compared inline.
func mergeTwo(d *dict, a, b *run) run {
	out := run{recs: make([]rec, a.len()+b.len())}
	raws := len(a.raws)+len(b.raws) > 0
	k := 0 // out.recs[:k] are taken
	take := func(s *run, p int) {
		if raws && s.recs[p].flags&flagRaw != 0 {
			out.raws = append(out.raws, rawUPID{pos: uint32(k), upid: *s.raw(p)})
		}
		out.recs[k] = s.recs[p]
		k++
	}
	i, j := 0, 0
	for i < a.len() && j < b.len() {
		ra, rb := &a.recs[i], &b.recs[j]
		c := 0
		switch {
		case ra.start > rb.start:
			c = -1
		case ra.start < rb.start:
			c = 1
		default:
			c = d.cmp(ra, a.raw(i), rb, b.raw(j))
		}
		switch {
		case c < 0:
			take(a, i)
			i++
		case c > 0:
			take(b, j)
			j++
		default: // the same task: keep a's copy
			take(a, i)
			i++
			j++
		}
	}
	for ; i < a.len(); i++ {
		take(a, i)
	}
	for ; j < b.len(); j++ {
		take(b, j)
	}
	out.recs = out.recs[:k]
	return out
}
