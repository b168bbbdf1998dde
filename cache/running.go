package cache

import (
	"math/bits"

	"github.com/taskfleet/taskfleet/task"
)

// The running set as snapshots see it: a few segments of running tasks
// ("levels"), maintained incrementally so that a publish costs what the
// batch changed, not the size of the running set.
//
//   - A task that starts running goes into a new small level at the next
//     publish. Levels merge like a binary counter (a level absorbs the next
//     when that is more than half its size), so there are O(log n) of them
//     and each task is copied O(log n) times.
//   - A task that leaves the running set (finished, untracked, dropped, or
//     replaced by a newer report) is marked dead in its level: a copy of the
//     level's header with one more bit in a persistent bitmap. Queries skip
//     dead tasks. A level whose dead tasks pass an eighth of it is rebuilt
//     without them (cost O(level) after level/8 deaths), and merges drop
//     them, so dead tasks never exceed an eighth of the running set.
//
// The Writer's map (Writer.active) stays the authority for what runs; the
// levels are its published form. After a wholesale change (string table
// compaction, a lost state) activeDirty makes the next publish rebuild the
// levels from the map.

// deadChunkBits is the number of positions one bitmap chunk covers.
const deadChunkBits = 4096

// deadSet is a persistent set of positions: a bitmap in chunks, copied on
// write one chunk at a time, so adding a position to a shared set costs a
// chunk (512 bytes) and the chunk index, whatever the size of the set.
type deadSet struct {
	chunks []*[deadChunkBits / 64]uint64
	n      int
}

// has reports whether pos is in the set.
func (s *deadSet) has(pos int) bool {
	c := pos / deadChunkBits
	if c >= len(s.chunks) || s.chunks[c] == nil {
		return false
	}
	b := pos % deadChunkBits
	return s.chunks[c][b/64]&(1<<(b%64)) != 0
}

// with returns the set with pos added (s is not changed).
func (s *deadSet) with(pos int) deadSet {
	c := pos / deadChunkBits
	chunks := make([]*[deadChunkBits / 64]uint64, max(len(s.chunks), c+1))
	copy(chunks, s.chunks)
	chunk := new([deadChunkBits / 64]uint64)
	if old := chunks[c]; old != nil {
		*chunk = *old
	}
	b := pos % deadChunkBits
	chunk[b/64] |= 1 << (b % 64)
	chunks[c] = chunk
	return deadSet{chunks: chunks, n: s.n + 1}
}

// appendRange appends the positions of the set in [lo, hi), ascending.
func (s *deadSet) appendRange(out []uint32, lo, hi int) []uint32 {
	for c, chunk := range s.chunks {
		if chunk == nil {
			continue
		}
		base := c * deadChunkBits
		if base >= hi || base+deadChunkBits <= lo {
			continue
		}
		for w, word := range chunk {
			for word != 0 {
				pos := base + w*64 + bits.TrailingZeros64(word)
				word &= word - 1
				if pos >= lo && pos < hi {
					out = append(out, uint32(pos))
				}
			}
		}
	}
	return out
}

// withDead returns a copy of s in which the task at pos is dead.
func (s *segment) withDead(d *dict, pos int) *segment {
	c := *s
	c.dead = s.dead.with(pos)
	c.deadCnt[d.slot(&s.recs[pos])]++
	return &c
}

// liveRun returns the tasks of s that are not dead: s's own run when none
// is, else a copy. Callers only read it.
func (s *segment) liveRun() run {
	if s.dead.n == 0 {
		return run{recs: s.recs, raws: s.raws}
	}
	keep := make([]bool, s.len())
	for i := range keep {
		keep[i] = !s.dead.has(i)
	}
	return s.run.filter(keep)
}

// addRunning stages a running task for the next publish.
func (w *Writer) addRunning(k recKey, at *activeTask) {
	if w.activeDirty {
		return
	}
	if w.runAdded == nil {
		w.runAdded = map[recKey]*activeTask{}
	}
	w.runAdded[k] = at
}

// removeRunning takes a running task out of the published form: from the
// tasks staged since the last publish, or by marking it dead in its level.
func (w *Writer) removeRunning(k recKey, at *activeTask) {
	if w.activeDirty {
		return
	}
	if _, ok := w.runAdded[k]; ok {
		delete(w.runAdded, k)
		return
	}
	d := w.in.view()
	for i, lv := range w.levels {
		pos := lv.find(&at.rec, at.raw)
		if pos < 0 || lv.dead.has(pos) {
			continue
		}
		lv = lv.withDead(d, pos)
		if 8*lv.dead.n > lv.len() {
			lv = newSegment(d, lv.liveRun())
		}
		if lv.len() == 0 {
			w.levels = append(w.levels[:i], w.levels[i+1:]...)
		} else {
			w.levels[i] = lv
		}
		return
	}
	// Not found: the levels disagree with the map (a bug). Rebuild them
	// rather than publish a wrong running set.
	w.levelMisses++
	w.log.Warn().Str("remote", w.in.remotes.strs[at.rec.remote]).
		Msg("task cache running set out of step with its levels, rebuilding them")
	w.activeDirty = true
}

// publishRunning brings the levels up to date with the Writer's map: the
// staged tasks become a new level (merged like a binary counter), or,
// after a wholesale change, the levels are rebuilt.
func (w *Writer) publishRunning() {
	d := w.in.view()
	if w.activeDirty {
		w.levels = w.levels[:0]
		if seg := w.buildActive(); seg.len() > 0 {
			w.levels = append(w.levels, seg)
		}
		w.runAdded = nil
		w.activeDirty = false
		return
	}
	if len(w.runAdded) == 0 {
		return
	}
	recs := make([]rec, 0, len(w.runAdded))
	var raws map[int]*task.UPID
	for _, at := range w.runAdded {
		if at.raw != nil {
			if raws == nil {
				raws = map[int]*task.UPID{}
			}
			raws[len(recs)] = at.raw
		}
		recs = append(recs, at.rec)
	}
	clear(w.runAdded)
	w.levels = append(w.levels, newSegment(d, sortRun(d, recs, raws)))
	for n := len(w.levels); n >= 2 && w.levels[n-2].liveLen() < 2*w.levels[n-1].liveLen(); n = len(w.levels) {
		a, b := w.levels[n-2].liveRun(), w.levels[n-1].liveRun()
		merged := newSegment(d, mergeTwo(d, &a, &b))
		w.levels = append(w.levels[:n-2], merged)
	}
}
