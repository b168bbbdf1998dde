package cache

import (
	"slices"
	"sort"

	"github.com/taskfleet/taskfleet/task"
)

// Query returns one page of the tasks that match f, newest first
// (task.Compare), and the number of all matches. It agrees with filtering
// every task with f.Match and applying f.Start and f.Limit (0 = no limit).
//
// Cost: the total comes from per-segment counts when the filter is on
// remote, type, user and status only (and the start-time window covers
// whole segments), else from the segment's smallest index list or a scan.
// Start is skipped in O(log² n) for unfiltered and time-window queries and
// those on one remote; other filtered queries step over Start matches.
func (s *Snapshot) Query(f task.Filter) task.Page {
	total, n, m := s.open(f)
	if m == nil {
		return task.Page{Total: total}
	}
	page := task.Page{Tasks: make([]task.Task, 0, n), Total: total}
	for len(page.Tasks) < n {
		cur := m.peek()
		if cur == nil {
			break
		}
		page.Tasks = append(page.Tasks, cur.src.seg.at(m.d, cur.pos))
		cur.next()
	}
	return page
}

// open counts the matches of f and positions a merger on the first task
// of the page f selects: it returns the total, the number of tasks in the
// page and the merger, nil when the page is empty.
func (s *Snapshot) open(f task.Filter) (total, n int, m *merger) {
	d := s.dict
	c := compile(&f, d)
	if c.none {
		return 0, 0, nil
	}
	srcs := s.sources(&c)
	for i := range srcs {
		total += srcs[i].count(&c, d)
	}
	start := max(f.Start, 0)
	if start >= total {
		return total, 0, nil
	}
	n = total - start
	if f.Limit > 0 && f.Limit < n {
		n = f.Limit
	}
	m = &merger{d: d, curs: make([]*cursor, 0, len(srcs))}
	if splits, ok := selectStart(d, srcs, start); ok {
		for i := range srcs {
			m.curs = append(m.curs, newCursor(&srcs[i], &c, d, splits[i]))
		}
	} else {
		for i := range srcs {
			m.curs = append(m.curs, newCursor(&srcs[i], &c, d, 0))
		}
		for k := 0; k < start && m.pop() != nil; k++ {
		}
	}
	return total, n, m
}

// sources returns the candidates of every segment that can hold a match.
func (s *Snapshot) sources(c *cond) []source {
	srcs := make([]source, 0, len(s.segs))
	for _, seg := range s.segs {
		if src, ok := newSource(seg, c, s.dict); ok {
			srcs = append(srcs, src)
		}
	}
	return srcs
}

// source is the candidate positions of one segment for a condition: the
// positions [lo, hi) of the start-time window, or the union of index lists
// restricted to it, whichever is smaller.
type source struct {
	seg    *segment
	lo, hi int
	lists  [][]uint32 // nil: every position in [lo, hi)
	need   int        // condition kinds the candidates do not imply
	// dead are the positions of the segment's dead tasks (running.go)
	// that are in the window and match: counted by the count tables and
	// the scans, skipped by cursors.
	dead []uint32
}

func newSource(seg *segment, c *cond, d *dict) (source, bool) {
	src := source{seg: seg}
	if live := seg.live(); c.sum(&live) == 0 {
		return src, false
	}
	src.lo, src.hi = seg.startRange(c.since, c.until)
	if src.lo >= src.hi {
		return src, false
	}
	if seg.dead.n > 0 {
		src.dead = seg.dead.appendRange(nil, src.lo, src.hi)
		src.dead = slices.DeleteFunc(src.dead, func(p uint32) bool { return !c.match(d, &seg.recs[p]) })
	}
	src.need = c.needs()
	if src.need&needSlot != 0 && slotsVacuous(seg, c) {
		src.need &^= needSlot
	}
	best := src.hi - src.lo
	try := func(lists [][]uint32, covers int) { // lists must not be nil
		n := 0
		for _, l := range lists {
			n += len(l)
		}
		if n < best {
			best, src.lists = n, lists
			src.need = c.needs() &^ covers
			if src.need&needSlot != 0 && slotsVacuous(seg, c) {
				src.need &^= needSlot
			}
		}
	}
	if c.remote >= 0 {
		try(src.restrict(seg.byRemote.list(uint32(c.remote))), needRemote)
	}
	if c.types != nil {
		try(src.union(&seg.byType, c.types), needType)
	}
	if c.users != nil {
		try(src.union(&seg.byUser, c.users), needUser)
	}
	if !c.slots[task.StatusOK] && !c.slots[slotRunning] {
		lists := [][]uint32{} // non-nil: nil means the whole range
		for sl := range nslots {
			if c.slots[sl] {
				if l := src.cut(seg.bySlot.list(uint32(sl))); len(l) > 0 {
					lists = append(lists, l)
				}
			}
		}
		try(lists, needSlot)
	}
	return src, true
}

// slotsVacuous reports whether every task of seg is in an allowed slot.
func slotsVacuous(seg *segment, c *cond) bool {
	for sl, n := range seg.counts {
		if n > 0 && !c.slots[sl] {
			return false
		}
	}
	return true
}

// restrict returns the part of a position list within [lo, hi) (as a list
// of lists, empty when nothing is left).
func (src *source) restrict(l []uint32) [][]uint32 {
	l = src.cut(l)
	if len(l) == 0 {
		return [][]uint32{}
	}
	return [][]uint32{l}
}

func (src *source) cut(l []uint32) []uint32 {
	if src.lo > 0 {
		l = l[sort.Search(len(l), func(i int) bool { return l[i] >= uint32(src.lo) }):]
	}
	if src.hi < src.seg.len() {
		l = l[:sort.Search(len(l), func(i int) bool { return l[i] >= uint32(src.hi) })]
	}
	return l
}

// union returns the non-empty lists of the codes set in want.
func (src *source) union(k *kindIndex, want []bool) [][]uint32 {
	lists := [][]uint32{}
	for i, code := range k.codes {
		if int(code) < len(want) && want[code] {
			if l := src.cut(k.pos[k.off[i]:k.off[i+1]]); len(l) > 0 {
				lists = append(lists, l)
			}
		}
	}
	return lists
}

func (src *source) exact() bool { return src.need == 0 }

// whole reports whether the window covers the whole segment.
func (src *source) whole() bool { return src.lo == 0 && src.hi == src.seg.len() }

// count returns the number of matches among the candidates that are not
// dead.
func (src *source) count(c *cond, d *dict) int {
	return src.countAll(c, d) - len(src.dead)
}

// countAll returns the number of matches among the candidates, dead ones
// included.
func (src *source) countAll(c *cond, d *dict) int {
	if n, ok := src.aggregate(c); ok {
		return n
	}
	if src.exact() {
		if src.lists == nil {
			return src.hi - src.lo
		}
		n := 0
		for _, l := range src.lists {
			n += len(l)
		}
		return n
	}
	if n, ok := src.byComplement(c, d); ok {
		return n
	}
	n := 0
	recs := src.seg.recs
	if src.lists == nil {
		for i := src.lo; i < src.hi; i++ {
			if c.match(d, &recs[i]) {
				n++
			}
		}
		return n
	}
	for _, l := range src.lists {
		for _, pos := range l {
			if c.match(d, &recs[pos]) {
				n++
			}
		}
	}
	return n
}

// byComplement counts the matches of a window that covers more than half
// of the segment as the whole segment's (from the count tables) minus the
// matches outside the window, which are fewer to scan.
func (src *source) byComplement(c *cond, d *dict) (int, bool) {
	seg := src.seg
	if src.lists != nil || 2*(src.hi-src.lo) <= seg.len() {
		return 0, false
	}
	whole := source{seg: seg, lo: 0, hi: seg.len()}
	n, ok := whole.aggregate(c)
	if !ok {
		return 0, false
	}
	out := c.outside()
	for _, r := range src.outsideRanges() {
		for i := r[0]; i < r[1]; i++ {
			if out.match(d, &seg.recs[i]) {
				n--
			}
		}
	}
	return n, true
}

// outsideRanges returns the positions of the segment outside the window.
func (src *source) outsideRanges() [2][2]int {
	return [2][2]int{{0, src.lo}, {src.hi, src.seg.len()}}
}

// aggregate counts the matches from the segment's count tables when the
// window covers the segment and the condition is on remote, scope, type,
// user and status slots only (user alone, not with remote or type).
func (src *source) aggregate(c *cond) (int, bool) {
	if !src.whole() {
		return 0, false
	}
	seg := src.seg
	rest := c.needs() &^ needSlot
	switch {
	case rest == 0:
		return c.sum(&seg.counts), true
	case rest == needUser:
		return seg.byUser.sum(c, c.users), true
	case rest == needType:
		return seg.byType.sum(c, c.types), true
	case rest&^(needRemote|needScope|needType) == 0:
		n := 0
		seg.eachRemote(c, func(r int) {
			if c.types == nil {
				n += c.sum(&seg.byRemote.cnt[r])
				return
			}
			for i := seg.pairOff[r]; i < seg.pairOff[r+1]; i++ {
				if p := &seg.pairs[i]; c.types[p.typ] {
					n += c.sum(&p.cnt)
				}
			}
		})
		return n, true
	}
	return 0, false
}

// sum adds the counts of the allowed slots of the codes set in want.
func (k *kindIndex) sum(c *cond, want []bool) int {
	n := 0
	for i, code := range k.codes {
		if int(code) < len(want) && want[code] {
			n += c.sum(&k.cnt[i])
		}
	}
	return n
}

// eachRemote calls fn with the index in byRemote of each remote of seg
// allowed by the remote and scope conditions.
func (seg *segment) eachRemote(c *cond, fn func(r int)) {
	if c.remote >= 0 {
		if r := seg.byRemote.local(uint32(c.remote)); r >= 0 && (c.scope == nil || c.scope[c.remote]) {
			fn(r)
		}
		return
	}
	for r, code := range seg.byRemote.codes {
		if c.scope == nil || c.scope[code] {
			fn(r)
		}
	}
}

// cursor walks the matching positions of a source in list order.
type cursor struct {
	src *source
	c   *cond
	d   *dict
	pos int // current match, or -1 when done

	i    int        // range: next position to look at
	heap []listHead // lists: one head per list with positions left
	dead []uint32   // the source's dead positions not yet passed
}

type listHead struct {
	list []uint32 // the rest of the list; list[0] is the head
}

// newCursor returns a cursor on the first match at or after the skip-th
// candidate (skip is only non-zero for exact sources with at most one list).
func newCursor(src *source, c *cond, d *dict, skip int) *cursor {
	cur := &cursor{src: src, c: c, d: d, i: src.lo + skip, dead: src.dead}
	if src.lists != nil {
		for _, l := range src.lists {
			if len(l) > skip {
				cur.heap = append(cur.heap, listHead{list: l[skip:]})
			}
		}
		for k := len(cur.heap)/2 - 1; k >= 0; k-- {
			cur.down(k)
		}
	}
	cur.next()
	return cur
}

// next moves to the following match.
func (cur *cursor) next() {
	for {
		pos := -1
		if cur.src.lists == nil {
			if cur.i < cur.src.hi {
				pos = cur.i
				cur.i++
			}
		} else if len(cur.heap) > 0 {
			h := &cur.heap[0]
			pos = int(h.list[0])
			if h.list = h.list[1:]; len(h.list) == 0 {
				last := len(cur.heap) - 1
				cur.heap[0] = cur.heap[last]
				cur.heap = cur.heap[:last]
			}
			cur.down(0)
		}
		if pos >= 0 && len(cur.dead) > 0 && cur.isDead(pos) {
			continue
		}
		if pos < 0 || cur.src.exact() || cur.c.match(cur.d, &cur.src.seg.recs[pos]) {
			cur.pos = pos
			return
		}
	}
}

// isDead reports whether pos, the next candidate, is dead. Candidates come
// in ascending positions, so the dead list is passed once.
func (cur *cursor) isDead(pos int) bool {
	for len(cur.dead) > 0 && int(cur.dead[0]) < pos {
		cur.dead = cur.dead[1:]
	}
	return len(cur.dead) > 0 && int(cur.dead[0]) == pos
}

// down restores the heap order (smallest head position first) below k.
func (cur *cursor) down(k int) {
	h := cur.heap
	for {
		l := 2*k + 1
		if l >= len(h) {
			return
		}
		if r := l + 1; r < len(h) && h[r].list[0] < h[l].list[0] {
			l = r
		}
		if h[k].list[0] <= h[l].list[0] {
			return
		}
		h[k], h[l] = h[l], h[k]
		k = l
	}
}

// merger merges cursors into list order.
type merger struct {
	d    *dict
	curs []*cursor
}

// peek returns the cursor whose match comes first, or nil.
func (m *merger) peek() *cursor {
	var best *cursor
	for _, cur := range m.curs {
		if cur.pos < 0 {
			continue
		}
		if best == nil || m.less(cur, best) {
			best = cur
		}
	}
	return best
}

// pop skips the first match and returns its cursor, or nil.
func (m *merger) pop() *cursor {
	cur := m.peek()
	if cur != nil {
		cur.next()
	}
	return cur
}

func (m *merger) less(a, b *cursor) bool {
	sa, sb := a.src.seg, b.src.seg
	return m.d.cmp(&sa.recs[a.pos], sa.raw(a.pos), &sb.recs[b.pos], sb.raw(b.pos)) < 0
}
