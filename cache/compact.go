package cache

// Compaction of the string tables. Interned strings are never removed one by
// one (snapshots share the tables), so statuses and worker ids of tasks that
// aged out would accumulate. At rotation, when the tables have grown past
// a minimum and hold more than twice the strings still used, the Writer
// rebuilds them and re-encodes every segment; the old tables stay valid for
// the snapshots that use them.

// defaultCompactMin is the table size below which compaction is not worth it.
const defaultCompactMin = 1 << 16

func (w *Writer) maybeCompact() {
	limit := defaultCompactMin
	if w.hooks != nil && w.hooks.compactMin > 0 {
		limit = w.hooks.compactMin
	}
	size := w.in.size()
	if len(w.recent) > 0 || size < limit || 2*w.liveStrings() > size {
		return
	}
	old := w.in.view()
	nw := newInterner()
	remap := func(r rec) rec {
		r.remote = nw.remote(old.remotes[r.remote])
		r.node = nw.node(old.nodes[r.node])
		r.typ = nw.typ(old.types[r.typ])
		r.id = nw.id(old.ids[r.id])
		r.user = nw.user(old.users[r.user])
		r.status = nw.status(old.statuses[r.status])
		return r
	}
	remapped := make(map[int64]run, len(w.base))
	for p, seg := range w.base {
		recs := make([]rec, seg.len())
		for i := range seg.recs {
			recs[i] = remap(seg.recs[i])
		}
		remapped[p] = run{recs: recs, raws: seg.raws}
	}
	active := make(map[string]remoteSet, len(w.active))
	for remote, set := range w.active {
		ns := make(remoteSet, len(set))
		for _, at := range set {
			r := remap(at.rec)
			ns[keyOf(&r, at.raw)] = &activeTask{rec: r, raw: at.raw, node: at.node}
		}
		active[remote] = ns
	}
	// Codes do not change the list order (it depends on the strings), so
	// the runs stay sorted.
	w.in = nw
	d := nw.view()
	for p, r := range remapped {
		w.base[p] = newSegment(d, r)
	}
	w.active = active
	w.activeDirty = true
	w.log.Info().Int("strings", nw.size()).Msg("task cache string tables compacted")
}

// liveStrings counts the distinct strings the archive and the running tasks
// use (an upper bound: a string used as two kinds counts twice).
func (w *Writer) liveStrings() int {
	in := w.in
	used := [6][]bool{
		make([]bool, len(in.remotes.strs)), make([]bool, len(in.nodes.strs)), make([]bool, len(in.types.strs)),
		make([]bool, len(in.ids.strs)), make([]bool, len(in.users.strs)), make([]bool, len(in.statuses.strs)),
	}
	mark := func(r *rec) {
		used[0][r.remote], used[1][r.node], used[2][r.typ] = true, true, true
		used[3][r.id], used[4][r.user], used[5][r.status] = true, true, true
	}
	for _, seg := range w.base {
		for i := range seg.recs {
			mark(&seg.recs[i])
		}
	}
	for _, seg := range w.recent {
		for i := range seg.recs {
			mark(&seg.recs[i])
		}
	}
	for _, set := range w.active {
		for _, at := range set {
			mark(&at.rec)
		}
	}
	n := 0
	for _, u := range used {
		for _, ok := range u {
			if ok {
				n++
			}
		}
	}
	return n
}
