package cache

import (
	"slices"
	"time"
)

// fold merges the recent segments into the archive segments of their
// periods and marks those periods dirty. Tasks older than the retention
// are dropped.
func (w *Writer) fold() {
	if len(w.recent) == 0 {
		return
	}
	d := w.in.view()
	runs := make([]*run, len(w.recent))
	for i, s := range w.recent {
		runs[i] = &s.run
	}
	all := runs[0]
	if len(runs) > 1 {
		merged := mergeRuns(d, runs...)
		all = &merged
	}
	w.placeRun(d, all)
	w.recent = nil
}

// placeRun merges a sorted run into the archive segments of the periods its
// tasks belong to, marking them dirty.
func (w *Writer) placeRun(d *dict, all *run) {
	// all is sorted newest first, so each period's tasks are contiguous.
	for lo := 0; lo < all.len(); {
		p, ok := w.periodOf(all.recs[lo].start)
		hi := lo + 1
		for hi < all.len() {
			q, ok2 := w.periodOf(all.recs[hi].start)
			if q != p || ok2 != ok {
				break
			}
			hi++
		}
		if ok {
			part := all.runOf(lo, hi)
			if seg := w.base[p]; seg != nil && seg.len() > 0 {
				part = mergeRuns(d, &seg.run, &part)
			}
			w.base[p] = newSegment(d, part)
			w.dirty[p] = true
		}
		lo = hi
	}
}

// checkpoint makes the on-disk files match memory: it folds the recent
// tasks into the archive, writes every dirty archive file, writes the state
// file and empties the journal.
//
// Order matters for crash safety. Archive files that gain tasks are
// written before the state file, so the journal still holds every task
// that is not yet in an archive file until the state says it need not be
// replayed. Files that lost tasks to another period (rotation, repair of
// misplaced tasks) are written after the files that gained them, so a task
// is always in at least one file; Open drops the second copy. New periods
// are written oldest first, so a crash never leaves a gap between them.
func (w *Writer) checkpoint() error {
	start := time.Now()
	w.fold()
	var grow, shrink []int64
	for p := range w.dirty {
		if w.shrunk[p] {
			shrink = append(shrink, p)
		} else {
			grow = append(grow, p)
		}
	}
	slices.Sort(grow)
	slices.Sort(shrink)
	tasks := 0
	for _, p := range append(grow, shrink...) {
		if err := w.writeArchive(p); err != nil {
			return err
		}
		tasks += w.base[p].len()
		delete(w.dirty, p)
		delete(w.shrunk, p)
	}
	if err := w.writeState(); err != nil {
		return err
	}
	if err := w.truncateJournal(); err != nil {
		return err
	}
	w.ckptCutoffs = w.cutoffs.share()
	w.stats.Merges++
	w.stats.LastMerge = time.Since(start)
	w.log.Debug().Int("tasks", tasks).Dur("duration_ms", w.stats.LastMerge).Msg("task cache journal merged")
	return nil
}

// emptySegment returns a segment without tasks.
func (w *Writer) emptySegment() *segment {
	return newSegment(w.in.view(), run{})
}
