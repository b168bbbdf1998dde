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
// was built with; every later dict is a superset. Every index is sized by
// the segment's own tasks, not by the dict: a segment of one batch costs
// what the batch holds, however many remotes, users and types the cache
// knows.
type segment struct {
	run
	filter bloom // of the tasks, for large segments (see bloom)

	minStart, maxStart int64
	counts             [nslots]int32 // per status slot, dead tasks included

	// Postings and per-slot counts per remote, type and user code present
	// in the segment.
	byRemote, byType, byUser kindIndex
	// Positions (ascending) per non-ok finished slot (warning, error,
	// unknown; ok and running have no list: the first is most tasks, the
	// second a whole segment).
	bySlot postings

	// Per (remote, type) pair counts for statistics: pairs[pairOff[i]:
	// pairOff[i+1]] are those of byRemote.codes[i], by type code.
	pairs   []pair
	pairOff []uint32

	// dead are the positions of tasks that are no longer in the cache
	// (running tasks that finished or were dropped; see running.go), and
	// deadCnt their counts per slot. Only segments of running tasks have
	// them; the Writer marks a task dead in a copy of the segment that
	// shares everything else.
	dead    deadSet
	deadCnt [nslots]int32
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

// kindIndex indexes a segment's tasks by the code of one kind of string
// (remote, type or user): codes are the codes present, ascending; for the
// i-th, its positions are pos[off[i]:off[i+1]] (ascending) and its counts
// per status slot cnt[i].
type kindIndex struct {
	codes []uint32
	off   []uint32
	pos   []uint32
	cnt   [][nslots]int32
}

// local returns the index of code in codes, or -1.
func (k *kindIndex) local(code uint32) int {
	if i, ok := slices.BinarySearch(k.codes, code); ok {
		return i
	}
	return -1
}

// list returns the positions of the tasks with code.
func (k *kindIndex) list(code uint32) []uint32 {
	i := k.local(code)
	if i < 0 {
		return nil
	}
	return k.pos[k.off[i]:k.off[i+1]]
}

// at returns the task at pos.
func (s *segment) at(d *dict, pos int) task.Task {
	return d.task(&s.recs[pos], s.raw(pos))
}

// live returns the counts per slot of the tasks not dead.
func (s *segment) live() [nslots]int32 {
	c := s.counts
	for i := range c {
		c[i] -= s.deadCnt[i]
	}
	return c
}

// liveLen returns the number of tasks not dead.
func (s *segment) liveLen() int { return s.len() - s.dead.n }

// newSegment builds the indexes of a sorted run.
func newSegment(d *dict, r run) *segment {
	s := &segment{run: r}
	n := len(s.recs)
	if n > 0 {
		s.maxStart, s.minStart = s.recs[0].start, s.recs[n-1].start
	}
	slots := make([]uint8, n)
	slotOff := make([]uint32, nslots+1)
	for i := range s.recs {
		sl := d.slot(&s.recs[i])
		slots[i] = uint8(sl)
		s.counts[sl]++
		if indexedSlot(sl) {
			slotOff[sl+1]++
		}
	}
	codes := make([]uint32, n)  // per task, its code of the kind indexed
	locals := make([]uint32, n) // per task, its index in the kind's codes
	for i := range s.recs {
		codes[i] = s.recs[i].user
	}
	s.byUser = newKindIndex(codes, slots, locals, len(d.users))
	for i := range s.recs {
		codes[i] = s.recs[i].remote
	}
	s.byRemote = newKindIndex(codes, slots, locals, len(d.remotes))
	for i := range s.recs {
		codes[i] = s.recs[i].typ
	}
	s.byType = newKindIndex(codes, slots, locals, len(d.types))
	for i := 1; i < len(slotOff); i++ {
		slotOff[i] += slotOff[i-1]
	}
	s.bySlot = postings{off: slotOff, pos: make([]uint32, slotOff[nslots])}
	next := slotOff[:nslots:nslots]
	next = slices.Clone(next)
	for i, sl := range slots {
		if indexedSlot(int(sl)) {
			s.bySlot.pos[next[sl]] = uint32(i)
			next[sl]++
		}
	}
	s.buildPairs(slots, locals)
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

// newKindIndex indexes tasks by their codes of one kind (codes[i] of the
// i-th task); dictLen is the number of codes of the kind. It allocates in
// proportion to the tasks: with a dense table of the codes when they are
// few enough, else by sorting the codes present. It leaves each task's
// index in k.codes in locals.
func newKindIndex(codes []uint32, slots []uint8, locals []uint32, dictLen int) kindIndex {
	var k kindIndex
	n := len(codes)
	if n == 0 {
		k.off = []uint32{0}
		return k
	}
	same := true // one code (a batch of one remote): no table, no sort
	for _, c := range codes {
		if c != codes[0] {
			same = false
			break
		}
	}
	switch {
	case same:
		k.codes = []uint32{codes[0]}
		clear(locals)
	case dictLen <= 4*n+64:
		loc := make([]int32, dictLen)
		for _, c := range codes {
			loc[c] = 1
		}
		for c, used := range loc {
			if used != 0 {
				loc[c] = int32(len(k.codes))
				k.codes = append(k.codes, uint32(c))
			}
		}
		for i, c := range codes {
			locals[i] = uint32(loc[c])
		}
	default:
		sorted := slices.Clone(codes)
		slices.Sort(sorted)
		k.codes = slices.Compact(sorted)
		for i, c := range codes {
			j, _ := slices.BinarySearch(k.codes, c)
			locals[i] = uint32(j)
		}
	}
	m := len(k.codes)
	k.off = make([]uint32, m+1)
	k.cnt = make([][nslots]int32, m)
	for i, l := range locals {
		k.off[l+1]++
		k.cnt[l][slots[i]]++
	}
	for i := 1; i <= m; i++ {
		k.off[i] += k.off[i-1]
	}
	k.pos = make([]uint32, n)
	next := slices.Clone(k.off[:m])
	for i, l := range locals {
		k.pos[next[l]] = uint32(i)
		next[l]++
	}
	return k
}

// buildPairs counts tasks per (remote, type) and status slot; types are
// the tasks' indexes in byType.codes.
func (s *segment) buildPairs(slots []uint8, types []uint32) {
	nr := len(s.byRemote.codes)
	s.pairOff = make([]uint32, nr+1)
	scratch := make([][nslots]int32, len(s.byType.codes))
	var touched []uint32
	for r := 0; r < nr; r++ {
		s.pairOff[r] = uint32(len(s.pairs))
		touched = touched[:0]
		for _, p := range s.byRemote.pos[s.byRemote.off[r]:s.byRemote.off[r+1]] {
			t := types[p]
			if scratch[t] == ([nslots]int32{}) {
				touched = append(touched, t)
			}
			scratch[t][slots[p]]++
		}
		slices.Sort(touched)
		for _, t := range touched {
			s.pairs = append(s.pairs, pair{typ: s.byType.codes[t], cnt: scratch[t]})
			scratch[t] = [nslots]int32{}
		}
	}
	s.pairOff[nr] = uint32(len(s.pairs))
}
