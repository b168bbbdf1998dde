package cache

import (
	"slices"
	"sort"

	"github.com/taskfleet/taskfleet/task"
)

// rawUPID is a non-canonical UPID kept whole, by position in its segment.
type rawUPID struct {
	pos  uint32
	upid task.UPID
}

// segment is an immutable, sorted run of tasks with the small indexes that
// answer queries without a full scan. Snapshots share segments; the Writer
// builds new ones and never changes a published one.
//
// recs are in list order (task.Compare). Codes index the dict the segment
// was built with; every later dict is a superset.
type segment struct {
	run

	minStart, maxStart int64
	counts             [nslots]int32 // per status slot

	// Postings: positions (ascending) per remote, type and user code, and
	// per non-ok finished slot (warning, error, unknown; ok and running
	// have no list: the first is most tasks, the second a whole segment).
	byRemote, byType, byUser, bySlot postings

	// Per-code counts per status slot, and per (remote, type) pair for
	// statistics: pairs[pairOff[r]:pairOff[r+1]] are remote r's, by type.
	remoteCnt, typeCnt, userCnt [][nslots]int32
	pairs                       []pair
	pairOff                     []uint32
}

type pair struct {
	typ uint32
	cnt [nslots]int32
}

// postings maps a dense code to a list of positions: pos[off[c]:off[c+1]].
type postings struct {
	off []uint32
	pos []uint32
}

func (p *postings) list(code uint32) []uint32 {
	if int(code)+1 >= len(p.off) {
		return nil
	}
	return p.pos[p.off[code]:p.off[code+1]]
}

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

// at returns the task at pos.
func (s *segment) at(d *dict, pos int) task.Task {
	return d.task(&s.recs[pos], s.raw(pos))
}

// find returns the position of the task r (same remote and UPID) or -1.
func (s *run) find(r *rec, raw *task.UPID) int {
	if len(s.recs) == 0 || r.start > s.recs[0].start || r.start < s.recs[len(s.recs)-1].start {
		return -1
	}
	// recs are sorted by start descending.
	i := sort.Search(len(s.recs), func(i int) bool { return s.recs[i].start <= r.start })
	for ; i < len(s.recs) && s.recs[i].start == r.start; i++ {
		if sameTask(&s.recs[i], s.raw(i), r, raw) {
			return i
		}
	}
	return -1
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
// list order and drops repeated tasks, keeping the first occurrence.
func sortRun(d *dict, recs []rec, raws map[int]*task.UPID) run {
	n := len(recs)
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
	// Sort by start time first (cheap), then order each group of equal
	// start times by the full comparison, which renders UPID texts.
	slices.SortStableFunc(idx, func(a, b int32) int {
		sa, sb := recs[a].start, recs[b].start
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	for i := 0; i < n; {
		j := i + 1
		for j < n && recs[idx[j]].start == recs[idx[i]].start {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(idx[i:j], func(a, b int32) int {
				return d.cmp(&recs[a], rawOf(a), &recs[b], rawOf(b))
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

// newSegment builds the indexes of a sorted run.
func newSegment(d *dict, r run) *segment {
	s := &segment{run: r}
	n := len(s.recs)
	if n > 0 {
		s.maxStart, s.minStart = s.recs[0].start, s.recs[n-1].start
	}
	nr, nt, nu := len(d.remotes), len(d.types), len(d.users)
	s.remoteCnt = make([][nslots]int32, nr)
	s.typeCnt = make([][nslots]int32, nt)
	s.userCnt = make([][nslots]int32, nu)
	remoteOff := make([]uint32, nr+1)
	typeOff := make([]uint32, nt+1)
	userOff := make([]uint32, nu+1)
	slotOff := make([]uint32, nslots+1)
	for i := range s.recs {
		r := &s.recs[i]
		sl := d.slot(r)
		s.counts[sl]++
		s.remoteCnt[r.remote][sl]++
		s.typeCnt[r.typ][sl]++
		s.userCnt[r.user][sl]++
		remoteOff[r.remote+1]++
		typeOff[r.typ+1]++
		userOff[r.user+1]++
		if indexedSlot(sl) {
			slotOff[sl+1]++
		}
	}
	s.byRemote = fillPostings(s.recs, remoteOff, func(r *rec) (uint32, bool) { return r.remote, true })
	s.byType = fillPostings(s.recs, typeOff, func(r *rec) (uint32, bool) { return r.typ, true })
	s.byUser = fillPostings(s.recs, userOff, func(r *rec) (uint32, bool) { return r.user, true })
	s.bySlot = fillPostings(s.recs, slotOff, func(r *rec) (uint32, bool) {
		sl := d.slot(r)
		return uint32(sl), indexedSlot(sl)
	})
	s.buildPairs(d, nt)
	return s
}

// indexedSlot reports whether a slot has a postings list.
func indexedSlot(sl int) bool { return sl != int(task.StatusOK) && sl != slotRunning }

// fillPostings turns per-code counts (off[c+1] = count of c) into postings.
func fillPostings(recs []rec, off []uint32, code func(*rec) (uint32, bool)) postings {
	for i := 1; i < len(off); i++ {
		off[i] += off[i-1]
	}
	p := postings{off: off, pos: make([]uint32, off[len(off)-1])}
	next := slices.Clone(off[:len(off)-1])
	for i := range recs {
		if c, ok := code(&recs[i]); ok {
			p.pos[next[c]] = uint32(i)
			next[c]++
		}
	}
	return p
}

// buildPairs counts tasks per (remote, type) and status slot.
func (s *segment) buildPairs(d *dict, ntypes int) {
	nr := len(s.byRemote.off) - 1
	s.pairOff = make([]uint32, nr+1)
	scratch := make([][nslots]int32, ntypes)
	var touched []uint32
	for r := 0; r < nr; r++ {
		s.pairOff[r] = uint32(len(s.pairs))
		touched = touched[:0]
		for _, p := range s.byRemote.list(uint32(r)) {
			rc := &s.recs[p]
			if scratch[rc.typ] == ([nslots]int32{}) {
				touched = append(touched, rc.typ)
			}
			scratch[rc.typ][d.slot(rc)]++
		}
		slices.Sort(touched)
		for _, t := range touched {
			s.pairs = append(s.pairs, pair{typ: t, cnt: scratch[t]})
			scratch[t] = [nslots]int32{}
		}
	}
	s.pairOff[nr] = uint32(len(s.pairs))
}
