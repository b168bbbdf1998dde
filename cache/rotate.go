package cache

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaybeRotate starts a new archive period when the clock has reached the
// end of the newest one (the newest archive is at least one Rotation old).
// It then merges the journal, writes the new period's file, compresses
// the files that are no longer among the newest PlainFiles and deletes the
// files past the retention, with their tasks. Several periods are added at
// once after a long downtime. Open calls it too, so a cache reopened after
// some hours still rotates; call it hourly. It reports whether it rotated.
func (w *Writer) MaybeRotate() (bool, error) {
	if err := w.usable(); err != nil {
		return false, err
	}
	cur := w.alignDown(w.now().Unix())
	if cur <= w.newest() {
		return false, nil
	}
	start := time.Now()
	w.advancePeriods(cur)
	if err := w.checkpoint(); err != nil {
		return false, w.fail(fmt.Errorf("rotate archive: %w", err))
	}
	if err := w.removeStale(); err != nil {
		return false, w.fail(fmt.Errorf("rotate archive: %w", err))
	}
	w.maybeCompact()
	w.publish()
	w.stats.Rotations++
	w.stats.LastRotation = time.Since(start)
	w.log.Info().Str("file", archiveName(cur, w.compressed(cur))).
		Dur("duration_ms", w.stats.LastRotation).Msg("task cache rotated")
	return true, nil
}

// advancePeriods makes cur the newest period in memory: it adds the new
// periods (dirty, so their files are written), moves tasks of the old
// newest period that started in a new one, drops the periods past the
// retention and marks the files whose compression changes.
func (w *Writer) advancePeriods(cur int64) {
	d := w.in.view()
	oldNewest := w.newest()
	kept := make([]int64, w.opts.Retention)
	for i := range kept {
		kept[i] = cur - int64(len(kept)-1-i)*w.rot
	}
	newestSeg := w.base[oldNewest]
	for _, p := range w.periods {
		if p < kept[0] {
			delete(w.base, p)
			delete(w.dirty, p)
			delete(w.shrunk, p)
		}
	}
	var moved run
	if seg := newestSeg; seg != nil {
		// The old newest period took every later start time; split off
		// the tasks that belong to the new periods.
		cut := sortSearchStart(seg, oldNewest+w.rot)
		if cut > 0 {
			moved = seg.runOf(0, cut)
			if oldNewest >= kept[0] {
				w.base[oldNewest] = newSegment(d, seg.runOf(cut, seg.len()))
				w.dirty[oldNewest] = true
				w.shrunk[oldNewest] = true
			}
		}
	}
	w.periods = kept
	for _, p := range kept {
		if p > oldNewest {
			w.base[p] = w.emptySegment()
			w.dirty[p] = true
		}
		if w.disk[p] != 0 && w.disk[p] != formOf(w.compressed(p)) {
			w.dirty[p] = true
		}
	}
	if moved.len() > 0 {
		w.placeRun(d, &moved)
	}
}

// sortSearchStart returns the number of leading tasks of seg (newest first)
// that started at or after t.
func sortSearchStart(seg *segment, t int64) int {
	lo, hi := 0, seg.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if seg.recs[m].start >= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// removeStale deletes the archive files (and their .broken copies) of
// periods no longer kept.
func (w *Writer) removeStale() error {
	var names []string
	for p, f := range w.disk {
		if slices.Contains(w.periods, p) {
			continue
		}
		if f&formPlain != 0 {
			names = append(names, archiveName(p, false))
		}
		if f&formZst != 0 {
			names = append(names, archiveName(p, true))
		}
		delete(w.disk, p)
	}
	for _, n := range w.brokenArchives {
		p, _, ok := parseArchiveName(strings.TrimSuffix(n, BrokenSuffix))
		if ok && !slices.Contains(w.periods, p) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	if err := removeFiles(w.fs, w.dir, names...); err != nil {
		return err
	}
	w.brokenArchives = slices.DeleteFunc(w.brokenArchives, func(n string) bool { return slices.Contains(names, n) })
	return nil
}
