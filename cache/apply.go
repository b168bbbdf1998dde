package cache

import (
	"errors"
	"maps"
	"slices"

	"github.com/taskfleet/taskfleet/task"
)

// This file changes the in-memory state. The same functions run for a
// live change (after its journal record is durable) and when Open replays
// the journal, so a replay rebuilds exactly the state that was published.

// prepared is a validated batch in compact form.
type prepared struct {
	remote string
	recs   []rec
	raws   []*task.UPID // per rec: the UPID when not canonical; nil when all are
	nodes  []NodeResult
}

// raw returns the UPID of the i-th task when it is not canonical.
func (p *prepared) raw(i int) *task.UPID {
	if p.raws == nil {
		return nil
	}
	return p.raws[i]
}

// prepare validates a batch and interns its strings. It interns nothing
// when the batch fails.
func (w *Writer) prepare(remote string, tasks []task.Task, nodes []NodeResult) (*prepared, error) {
	if err := task.ValidateRemoteID(remote); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.Node == "" {
			return nil, errors.New("node result without node name")
		}
	}
	p := &prepared{remote: remote, recs: make([]rec, len(tasks)), nodes: nodes}
	code, known := w.in.remotes.find(remote)
	var later []int // the tasks with a string not interned yet
	for i := range tasks {
		t := &tasks[i]
		r, raw, found, ok := w.in.checkRec(code, t)
		if !ok || t.Remote != remote {
			return nil, taskError(remote, t)
		}
		if !found {
			later = append(later, i)
			continue
		}
		p.recs[i] = r
		p.setRaw(i, raw, t)
	}
	if !known { // a new remote: now its code
		code = w.in.remote(remote)
		for i := range p.recs {
			p.recs[i].remote = code
		}
	}
	for _, i := range later {
		var raw bool
		p.recs[i], raw = w.in.toRecOf(code, &tasks[i])
		p.setRaw(i, raw, &tasks[i])
	}
	return p, nil
}

// setRaw keeps the UPID of the i-th task when it is not canonical.
func (p *prepared) setRaw(i int, raw bool, t *task.Task) {
	if raw {
		if p.raws == nil {
			p.raws = make([]*task.UPID, len(p.recs))
		}
		p.raws[i] = &t.UPID
	}
}

// applyPrepared applies a batch to memory.
func (w *Writer) applyPrepared(p *prepared) {
	d := w.in.view()
	set := w.active[p.remote]
	// The batch's running tasks, and whether the batch also lists them
	// finished (then they are not running).
	var (
		running map[recKey]bool
		runRecs []rec
		runRaws []*task.UPID
	)
	for i := range p.recs {
		if r := &p.recs[i]; r.end == 0 {
			if running == nil {
				running = map[recKey]bool{}
			}
			running[keyOf(r, p.raw(i))] = false
			runRecs, runRaws = append(runRecs, *r), append(runRaws, p.raw(i))
		}
	}
	var maxFinished []nodeMax // by node code; pbsNodeCode for PBS
	var (
		// The finished tasks to add, compacted into p.recs in place (the
		// loop reads each rec before it writes to its index or below).
		newRecs  = p.recs[:0]
		newRaws  map[int]*task.UPID
		untracks []task.UPID
	)
	for i := range p.recs {
		r, raw := &p.recs[i], p.raw(i)
		if r.end == 0 {
			continue
		}
		node := r.node
		if r.flags&flagPBS != 0 {
			node = pbsNodeCode
		}
		maxFinished = noteMax(maxFinished, node, r.start)
		if len(running) > 0 || len(set) > 0 {
			k := keyOf(r, raw)
			if _, ok := running[k]; ok {
				running[k] = true
			}
			if set[k] != nil {
				w.removeActive(p.remote, k)
			}
		}
		if list := w.tracked[p.remote]; len(list) > 0 {
			if j := trackedIndexRec(d, list, r, raw); j >= 0 {
				untracks = append(untracks, list[j])
			}
		}
		if _, ok := w.periodOf(r.start); !ok {
			continue
		}
		if raw != nil {
			if newRaws == nil {
				newRaws = map[int]*task.UPID{}
			}
			newRaws[len(newRecs)] = raw
		}
		newRecs = append(newRecs, *r)
	}
	for _, u := range untracks {
		w.removeTracked(p.remote, u)
	}
	for i := range runRecs {
		r, raw := &runRecs[i], runRaws[i]
		k := keyOf(r, raw)
		if running[k] || w.containsFinished(r, raw) {
			continue
		}
		if at := w.active[p.remote][k]; at != nil && at.rec == *r {
			continue
		}
		w.addActive(*r, raw)
	}
	if len(p.nodes) > 0 {
		byName := make(map[string]int64, len(maxFinished))
		for _, m := range maxFinished {
			code, v := m.node, m.start
			name := pbsNodeKey
			if code != pbsNodeCode {
				name = d.nodes[code]
			}
			// A PVE node named "localhost" and the PBS key share a cutoff.
			if old, ok := byName[name]; !ok || v > old {
				byName[name] = v
			}
		}
		for _, n := range p.nodes {
			if n.OK {
				w.advanceCutoff(p.remote, n.Node, byName)
			}
		}
	}
	if len(newRecs) > 0 {
		if r := w.dropKnown(sortRun(d, newRecs, newRaws)); r.len() > 0 {
			w.pushRecent(newSegment(d, r))
		}
	}
}

// dropKnown returns the tasks of a sorted run that the archive and the
// recent segments do not hold yet.
func (w *Writer) dropKnown(r run) run {
	keep := make([]bool, r.len())
	for i := range keep {
		keep[i] = true
	}
	for _, p := range w.periods {
		if seg := w.base[p]; seg != nil {
			seg.markKnown(&r, keep)
		}
	}
	for _, seg := range w.recent {
		seg.markKnown(&r, keep)
	}
	for _, k := range keep {
		if !k {
			return r.filter(keep)
		}
	}
	return r
}

// nodeMax is the newest start time of a batch's finished tasks of a node.
type nodeMax struct {
	node  uint32
	start int64
}

// noteMax raises the entry of node to start (a remote has few nodes: a
// slice beats a map).
func noteMax(ms []nodeMax, node uint32, start int64) []nodeMax {
	for i := range ms {
		if ms[i].node == node {
			ms[i].start = max(ms[i].start, start)
			return ms
		}
	}
	return append(ms, nodeMax{node, start})
}

// pbsNodeCode stands for the node key of PBS tasks in maxFinished.
const pbsNodeCode = ^uint32(0)

// advanceCutoff applies the cutoff rule to a node fetched successfully:
// the newest start time of its finished tasks, but not past the start of
// its oldest running task.
func (w *Writer) advanceCutoff(remote, node string, maxFinished map[string]int64) {
	c, has := w.cutoffs.get(remote, node)
	if mf, ok := maxFinished[node]; ok && (!has || mf > c) {
		c, has = mf, true
	}
	if !has {
		return
	}
	if oldest, ok := w.oldestActive(remote, node); ok && oldest < c {
		c = oldest
	}
	if old, ok := w.cutoffs.get(remote, node); !ok || old != c {
		w.cutoffs.set(remote, node, c)
	}
}

// oldestActive returns the start time of the oldest running task of a node.
func (w *Writer) oldestActive(remote, node string) (int64, bool) {
	var oldest int64
	found := false
	for _, at := range w.active[remote] {
		if at.node == node && (!found || at.rec.start < oldest) {
			oldest, found = at.rec.start, true
		}
	}
	return oldest, found
}

// containsFinished reports whether the archive or a recent batch holds the
// task finished.
func (w *Writer) containsFinished(r *rec, raw *task.UPID) bool {
	if p, ok := w.periodOf(r.start); ok {
		if seg := w.base[p]; seg != nil && seg.find(r, raw) >= 0 {
			return true
		}
	}
	for _, seg := range w.recent {
		if seg.find(r, raw) >= 0 {
			return true
		}
	}
	return false
}

// pushRecent adds a segment of new tasks. Recent segments are merged like a
// binary counter (a segment absorbs the next one when that is more than
// half its size: two equal batches merge, a batch does not merge into a
// segment twice its size), so there are O(log n) of them and each task is
// copied O(log n) times before the checkpoint folds them into the archive.
func (w *Writer) pushRecent(seg *segment) {
	w.recent = append(w.recent, seg)
	for n := len(w.recent); n >= 2 && w.recent[n-2].len() < 2*w.recent[n-1].len(); n = len(w.recent) {
		d := w.in.view()
		merged := newSegment(d, mergeRuns(d, &w.recent[n-2].run, &w.recent[n-1].run))
		w.recent = append(w.recent[:n-2], merged)
	}
}

// addActive adds or replaces a running task.
func (w *Writer) addActive(r rec, raw *task.UPID) {
	remote := w.in.remotes.strs[r.remote]
	set := w.active[remote]
	if set == nil {
		set = remoteSet{}
		w.active[remote] = set
	}
	k := keyOf(&r, raw)
	if old := set[k]; old == nil {
		w.nactive++
	} else {
		w.removeRunning(k, old)
	}
	at := &activeTask{rec: r, raw: raw, node: w.in.view().nodeKey(&r)}
	set[k] = at
	w.addRunning(k, at)
}

func (w *Writer) removeActive(remote string, k recKey) {
	set := w.active[remote]
	at := set[k]
	if at == nil {
		return
	}
	w.removeRunning(k, at)
	delete(set, k)
	w.nactive--
	if len(set) == 0 {
		delete(w.active, remote)
	}
}

// buildActive builds one segment of all running tasks (for the state file
// and after wholesale changes).
func (w *Writer) buildActive() *segment {
	d := w.in.view()
	recs := make([]rec, 0, w.nactive)
	raws := map[int]*task.UPID{}
	for _, set := range w.active {
		for _, at := range set {
			if at.raw != nil {
				raws[len(recs)] = at.raw
			}
			recs = append(recs, at.rec)
		}
	}
	return newSegment(d, sortRun(d, recs, raws))
}

// trackChanges reports whether Track would change anything.
func (w *Writer) trackChanges(remote string, upid task.UPID) bool {
	if trackedIndex(w.tracked[remote], upid) >= 0 {
		return false
	}
	t := task.Task{Remote: remote, UPID: upid}
	r, raw := w.in.toRec(&t)
	var u *task.UPID
	if raw {
		u = &upid
	}
	return !w.containsFinished(&r, u)
}

func (w *Writer) applyTrack(remote string, upid task.UPID) {
	if !w.trackChanges(remote, upid) {
		return
	}
	w.ownTracked()
	list := append(slices.Clone(w.tracked[remote]), upid)
	sortUPIDs(list)
	w.tracked[remote] = list
	t := task.Task{Remote: remote, UPID: upid}
	r, raw := w.in.toRec(&t)
	var u *task.UPID
	if raw {
		u = &t.UPID
	}
	if w.active[remote][keyOf(&r, u)] == nil {
		w.addActive(r, u)
	}
}

func (w *Writer) applyUntrack(remote string, upid task.UPID) {
	if !w.removeTracked(remote, upid) {
		return
	}
	t := task.Task{Remote: remote, UPID: upid}
	r, raw := w.in.toRec(&t)
	var u *task.UPID
	if raw {
		u = &t.UPID
	}
	w.removeActive(remote, keyOf(&r, u))
}

// removeTracked removes a task from the tracked set.
func (w *Writer) removeTracked(remote string, upid task.UPID) bool {
	list := w.tracked[remote]
	i := trackedIndex(list, upid)
	if i < 0 {
		return false
	}
	w.ownTracked()
	if len(list) == 1 {
		delete(w.tracked, remote)
	} else {
		w.tracked[remote] = slices.Delete(slices.Clone(list), i, i+1)
	}
	return true
}

func (w *Writer) applyDrop(remote string) {
	w.cutoffs.drop(remote)
	if len(w.tracked[remote]) > 0 {
		w.ownTracked()
		delete(w.tracked, remote)
	}
	for k := range w.active[remote] {
		w.removeActive(remote, k)
	}
}

// applyLower lowers every cutoff to at most before.
func (w *Writer) applyLower(before int64) {
	w.cutoffs.each(func(remote string, nodes map[string]int64) {
		for node, c := range nodes {
			if c > before {
				w.cutoffs.set(remote, node, before)
			}
		}
	})
}

// applyReset caps every cutoff to the one in to and drops the cutoffs not
// in to.
func (w *Writer) applyReset(to map[string]map[string]int64) {
	w.cutoffs.each(func(remote string, nodes map[string]int64) {
		for node, c := range nodes {
			v, ok := to[remote][node]
			switch {
			case !ok:
				w.cutoffs.remove(remote, node)
			case c > v:
				w.cutoffs.set(remote, node, v)
			}
		}
	})
}

func (w *Writer) ownTracked() {
	if w.trackedShared {
		w.tracked = maps.Clone(w.tracked)
		if w.tracked == nil {
			w.tracked = map[string][]task.UPID{}
		}
		w.trackedShared = false
	}
}

// snapshotTracked returns all tracked tasks with their remotes.
func (w *Writer) snapshotTracked() []task.RemoteUPID {
	s := Snapshot{tracked: w.tracked}
	return s.AllTracked()
}

// trackedIndexRec returns the index in list of the task r, or -1.
func trackedIndexRec(d *dict, list []task.UPID, r *rec, raw *task.UPID) int {
	var buf [160]byte
	var text []byte
	for i := range list {
		if list[i].StartTime != r.start {
			continue
		}
		if text == nil {
			text = d.appendUPID(buf[:0], r, raw)
		}
		if list[i].String() == string(text) {
			return i
		}
	}
	return -1
}
