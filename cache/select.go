package cache

import (
	"bytes"
	"sort"
	"strings"
)

// Skipping Start matches without visiting them: the split of a union of
// sorted lists at the k-th element, by bisection.

// selectStart finds, for exact sources of at most one list each, how many
// candidates of each source come before the start-th match overall (the
// k-th element of a union of sorted lists, by bisection). ok is false when a
// source does not allow it; the caller then steps over the matches.
func selectStart(d *dict, srcs []source, k int) (splits []int, ok bool) {
	if k == 0 {
		return make([]int, len(srcs)), true
	}
	seqs := make([]seq, len(srcs))
	for i := range srcs {
		src := &srcs[i]
		if !src.exact() || len(src.lists) > 1 {
			return nil, false
		}
		seqs[i] = seq{seg: src.seg, lo: src.lo, hi: src.hi, n: src.hi - src.lo, dead: src.dead}
		if src.lists != nil {
			seqs[i].list = []uint32{}
			if len(src.lists) == 1 {
				seqs[i].list = src.lists[0]
			}
			seqs[i].n = len(seqs[i].list)
		}
	}
	// Ranks and bounds are indexes into the sequences, dead tasks
	// included (cursors skip those by index too); cnt counts live ones.
	lo := make([]int, len(seqs))
	hi := make([]int, len(seqs))
	ranks := make([]int, len(seqs))
	for i := range seqs {
		hi[i] = seqs[i].n
	}
	for {
		j, width := -1, 0
		for i := range seqs {
			if w := hi[i] - lo[i]; w > width {
				j, width = i, w
			}
		}
		if j < 0 {
			return lo, true
		}
		mid := lo[j] + width/2
		pv := pivot{seg: seqs[j].seg, pos: seqs[j].pos(mid)}
		cnt := 0
		for i := range seqs {
			if i == j {
				ranks[i] = mid
			} else {
				ranks[i] = seqs[i].rank(d, &pv)
			}
			cnt += ranks[i] - seqs[i].deadBefore(ranks[i])
		}
		if cnt < k { // the pivot and everything before it are skipped
			for i := range seqs {
				lo[i] = max(lo[i], ranks[i])
			}
			lo[j] = mid + 1
		} else { // the pivot and everything after it are kept
			for i := range seqs {
				hi[i] = min(hi[i], ranks[i])
			}
			hi[j] = mid
		}
	}
}

// seq is an exact source seen as an indexable sorted sequence.
type seq struct {
	seg    *segment
	lo, hi int
	list   []uint32 // nil: positions lo, lo+1, ...
	n      int
	dead   []uint32 // dead positions among the elements, ascending
}

// deadBefore returns the number of dead elements among the first i.
func (q *seq) deadBefore(i int) int {
	if len(q.dead) == 0 {
		return 0
	}
	end := q.hi
	if i < q.n {
		end = q.pos(i)
	}
	return sort.Search(len(q.dead), func(j int) bool { return int(q.dead[j]) >= end })
}

func (q *seq) pos(i int) int {
	if q.list != nil {
		return int(q.list[i])
	}
	return q.lo + i
}

// rank returns how many elements of q sort before the pivot.
func (q *seq) rank(d *dict, pv *pivot) int {
	return sort.Search(q.n, func(i int) bool { return pv.cmp(d, q.seg, q.pos(i)) >= 0 })
}

// pivot is a task compared against many others; its UPID text is rendered
// at most once.
type pivot struct {
	seg      *segment
	pos      int
	text     []byte
	rendered bool
	buf      [160]byte
}

// cmp compares the task at (s, pos) with the pivot.
func (pv *pivot) cmp(d *dict, s *segment, pos int) int {
	e, p := &s.recs[pos], &pv.seg.recs[pv.pos]
	if e.start != p.start {
		if e.start > p.start {
			return -1
		}
		return 1
	}
	if !pv.rendered {
		pv.text = d.appendUPID(pv.buf[:0], p, pv.seg.raw(pv.pos))
		pv.rendered = true
	}
	var buf [160]byte
	if c := bytes.Compare(d.appendUPID(buf[:0], e, s.raw(pos)), pv.text); c != 0 {
		return c
	}
	return strings.Compare(d.remotes[e.remote], d.remotes[p.remote])
}
