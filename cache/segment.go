package cache

import (
	"slices"

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
	filter bloom // of the tasks, for large segments (see bloom)

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

// at returns the task at pos.
func (s *segment) at(d *dict, pos int) task.Task {
	return d.task(&s.recs[pos], s.raw(pos))
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
	if n >= bloomMinTasks {
		s.filter = newBloom(n)
		for i := range s.recs {
			s.filter.add(taskHash(&s.recs[i]))
		}
	}
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
