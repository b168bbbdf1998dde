package cache

import (
	"github.com/taskfleet/taskfleet/task"
)

// Statistics counts the finished tasks that match f by worker type and by
// remote, per status class. Running tasks have no status and are never
// counted; f.Start and f.Limit are ignored. Both maps are non-nil and hold
// only keys with at least one task.
//
// Segments inside the start-time window are added from their count tables
// when the filter is on remote, type and status only; the others (and
// filters on node or user) are scanned.
func (s *Snapshot) Statistics(f task.Filter) task.Statistics {
	d := s.dict
	c := compile(&f, d)
	c.slots[slotRunning] = false
	st := task.Statistics{ByType: map[string]task.Counts{}, ByRemote: map[string]task.Counts{}}
	if c.none || c.slots == ([nslots]bool{}) {
		return st
	}
	byType := make([][nslots]int32, len(d.types))
	byRemote := make([][nslots]int32, len(d.remotes))
	for _, seg := range s.segs {
		src, ok := newSource(seg, &c, d)
		if !ok {
			continue
		}
		for _, pos := range src.dead { // counted below, but not in the cache
			rc := &seg.recs[pos]
			sl := d.slot(rc)
			byType[rc.typ][sl]--
			byRemote[rc.remote][sl]--
		}
		if src.aggregateStats(&c, byType, byRemote) {
			continue
		}
		if src.lists == nil && 2*(src.hi-src.lo) > seg.len() {
			// Most of the segment: all of it minus what is outside.
			whole := source{seg: seg, lo: 0, hi: seg.len()}
			if whole.aggregateStats(&c, byType, byRemote) {
				out := c.outside()
				for _, r := range src.outsideRanges() {
					for i := r[0]; i < r[1]; i++ {
						if rc := &seg.recs[i]; out.match(d, rc) {
							sl := d.slot(rc)
							byType[rc.typ][sl]--
							byRemote[rc.remote][sl]--
						}
					}
				}
				continue
			}
		}
		src.scanStats(&c, d, byType, byRemote)
	}
	st.ByType = countsMap(&c, byType, d.types)
	st.ByRemote = countsMap(&c, byRemote, d.remotes)
	return st
}

// scanStats counts the matching candidates one by one.
func (src *source) scanStats(c *cond, d *dict, byType, byRemote [][nslots]int32) {
	recs := src.seg.recs
	add := func(r *rec) {
		sl := d.slot(r)
		byType[r.typ][sl]++
		byRemote[r.remote][sl]++
	}
	if src.lists == nil {
		if src.exact() {
			for i := src.lo; i < src.hi; i++ {
				add(&recs[i])
			}
			return
		}
		for i := src.lo; i < src.hi; i++ {
			if r := &recs[i]; c.match(d, r) {
				add(r)
			}
		}
		return
	}
	for _, l := range src.lists {
		for _, pos := range l {
			if r := &recs[pos]; src.exact() || c.match(d, r) {
				add(r)
			}
		}
	}
}

// countsMap turns per-code slot counts into a map keyed by the code's
// string, without the codes that counted nothing.
func countsMap(c *cond, v [][nslots]int32, names []string) map[string]task.Counts {
	n := 0
	for i := range v {
		if _, ok := toCounts(c, &v[i]); ok {
			n++
		}
	}
	m := make(map[string]task.Counts, n)
	for i := range v {
		if cnt, ok := toCounts(c, &v[i]); ok {
			m[names[i]] = cnt
		}
	}
	return m
}

// aggregateStats adds the segment's count tables when the window covers it
// and the condition is on remote, scope, type and status slots only.
func (src *source) aggregateStats(c *cond, byType, byRemote [][nslots]int32) bool {
	if !src.whole() || c.needs()&^(needRemote|needScope|needType|needSlot) != 0 {
		return false
	}
	seg := src.seg
	if c.remote < 0 && c.scope == nil {
		for i, t := range seg.byType.codes {
			if c.types == nil || c.types[t] {
				addSlots(&byType[t], &seg.byType.cnt[i])
			}
		}
		if c.types == nil {
			for i, r := range seg.byRemote.codes {
				addSlots(&byRemote[r], &seg.byRemote.cnt[i])
			}
			return true
		}
	}
	seg.eachRemote(c, func(r int) {
		code := seg.byRemote.codes[r]
		for i := seg.pairOff[r]; i < seg.pairOff[r+1]; i++ {
			p := &seg.pairs[i]
			if c.types == nil || c.types[p.typ] {
				if c.remote >= 0 || c.scope != nil {
					addSlots(&byType[p.typ], &p.cnt)
				}
				addSlots(&byRemote[code], &p.cnt)
			}
		}
	})
	return true
}

func addSlots(dst, v *[nslots]int32) {
	for i := range v {
		dst[i] += v[i]
	}
}

// toCounts turns slot counts into task.Counts, keeping the allowed slots;
// ok is false when no task is counted.
func toCounts(c *cond, v *[nslots]int32) (task.Counts, bool) {
	var out task.Counts
	n := 0
	for sl := range slotRunning {
		if !c.slots[sl] || v[sl] == 0 {
			continue
		}
		k := int(v[sl])
		n += k
		switch task.StatusClass(sl) {
		case task.StatusOK:
			out.OK = k
		case task.StatusWarning:
			out.Warning = k
		case task.StatusError:
			out.Error = k
		case task.StatusUnknown:
			out.Unknown = k
		}
	}
	return out, n > 0
}
