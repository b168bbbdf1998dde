package cache

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// Open opens the cache in opts.Dir. On first start it creates the directory
// and the empty archive set (Retention files ending with the current
// period), so that a backfill of the whole retention lands in the right
// files. Otherwise it loads the archives and the state, replays the
// journal, repairs what is damaged, merges the journal and rotates when
// due (see doc.go, "Recovery"). It publishes the first snapshot before it
// returns.
//
// Open fails on I/O errors and when the directory was written with another
// Rotation; damaged content is repaired, not returned (see Corruptions).
func Open(opts Options) (*Writer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	w := &Writer{
		opts:    o,
		fs:      o.fs,
		dir:     o.Dir,
		log:     o.Logger,
		rot:     int64(o.Rotation / time.Second),
		hooks:   o.hooks,
		in:      newInterner(),
		base:    map[int64]*segment{},
		active:  map[string]remoteSet{},
		tracked: map[string][]task.UPID{},
		disk:    map[int64]diskForm{},
		dirty:   map[int64]bool{},
		shrunk:  map[int64]bool{},
		latest:  o.Latest,
	}
	w.fs = syncWatch{fsys: w.fs, w: w}
	if err := w.open(); err != nil {
		w.closeFiles()
		return nil, fmt.Errorf("open cache: %w", err)
	}
	return w, nil
}

// recovery collects what Open found damaged.
type recovery struct {
	lowerBefore  int64 // lower every cutoff to this (damaged archive periods); MaxInt64: no
	resetJournal bool  // the journal lost records: cap cutoffs to the checkpoint's
	stateLost    bool  // the state is gone: drop every cutoff
}

func (w *Writer) open() error {
	start := time.Now()
	if err := w.fs.MkdirAll(w.dir, dirMode); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if err := w.lock(); err != nil {
		return err
	}
	names, err := w.fs.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("list directory: %w", err)
	}
	if err := removeOrphans(w.fs, w.dir, names); err != nil {
		return err
	}
	rc := recovery{lowerBefore: math.MaxInt64}
	st, err := w.readState(&rc)
	if err != nil {
		return err
	}
	files, err := w.scanNames(names)
	if err != nil {
		return err
	}
	fresh := w.choosePeriods(st, files)
	if err := w.loadArchives(st, files, &rc); err != nil {
		return err
	}
	if st != nil {
		if err := w.loadStateInto(st); err != nil {
			w.noteCorruption(&CorruptionError{File: StateFile, Err: err})
			w.clearState()
			rc.stateLost = true
		}
	} else if !fresh {
		rc.stateLost = true // archives without a state: cutoffs and tracked tasks are gone
	}
	w.ckptCutoffs = w.cutoffs.share()
	if err := w.replayJournal(&rc); err != nil {
		return err
	}
	if err := w.writeRepairs(&rc); err != nil {
		return err
	}
	if fresh || st == nil || len(w.dirty) > 0 || w.jsize > 0 || st.Retention != w.opts.Retention {
		if err := w.checkpoint(); err != nil {
			return err
		}
	}
	if err := w.removeStale(); err != nil {
		return err
	}
	w.publish()
	if _, err := w.MaybeRotate(); err != nil {
		return err
	}
	w.log.Info().Str("file", w.dir).Int("tasks", w.latest.Load().Len()).
		Dur("duration_ms", time.Since(start)).Msg("task cache opened")
	return nil
}

// readState reads the state file; nil when there is none or it is damaged.
func (w *Writer) readState(rc *recovery) (*stateFile, error) {
	data, err := w.fs.ReadFile(filepath.Join(w.dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	st, err := decodeState(data)
	if err != nil {
		if err := w.keepEvidence(StateFile, data); err != nil {
			return nil, err
		}
		w.noteCorruption(&CorruptionError{File: StateFile, Err: err})
		rc.stateLost = true
		return nil, nil
	}
	if st.Rotation != w.rot {
		return nil, fmt.Errorf("cache was written with rotation %ds, options say %ds: use that rotation or move the directory away", st.Rotation, w.rot)
	}
	return st, nil
}

// scanNames finds the archive files and .broken copies among the names.
func (w *Writer) scanNames(names []string) (map[int64]diskForm, error) {
	files := map[int64]diskForm{}
	for _, n := range names {
		if strings.HasSuffix(n, BrokenSuffix) {
			if strings.HasPrefix(n, ArchivePrefix) {
				w.brokenArchives = append(w.brokenArchives, n)
			}
			continue
		}
		p, z, ok := parseArchiveName(n)
		if !ok {
			continue
		}
		if p%w.rot != 0 {
			return nil, fmt.Errorf("archive file %s is not aligned to the rotation of %ds: use the rotation it was written with or move the directory away", n, w.rot)
		}
		files[p] |= formOf(z)
	}
	return files, nil
}

// choosePeriods sets the kept periods: Retention periods ending with the
// newest of the state's and the files' (a rotation that wrote new files
// but crashed before its state counts as done). It reports a first start.
func (w *Writer) choosePeriods(st *stateFile, files map[int64]diskForm) (fresh bool) {
	newest, have := int64(0), false
	if st != nil {
		newest, have = st.Newest, true
	}
	for p := range files {
		if !have || p > newest {
			newest, have = p, true
		}
	}
	if !have {
		newest, fresh = w.alignDown(w.now().Unix()), true
	}
	w.periods = make([]int64, w.opts.Retention)
	for i := range w.periods {
		w.periods[i] = newest - int64(len(w.periods)-1-i)*w.rot
	}
	for p, f := range files {
		w.disk[p] = f
	}
	return fresh
}

// loadArchives loads the kept archive files into memory. A file that is
// missing although the state (or, without state, the older and newer files)
// says it should exist, or that has bad lines, is damaged: its good tasks
// are kept, a copy is kept as evidence, and the cutoffs are to be lowered to
// the start of its period.
func (w *Writer) loadArchives(st *stateFile, files map[int64]diskForm, rc *recovery) error {
	committedLo, committedHi := int64(math.MaxInt64), int64(math.MinInt64)
	switch {
	case st != nil:
		committedLo, committedHi = st.Newest-int64(st.Retention-1)*w.rot, st.Newest
	default:
		for p := range files {
			committedLo, committedHi = min(committedLo, p), max(committedHi, p)
		}
	}
	recs := map[int64][]rec{}
	raws := map[int64]map[int]*task.UPID{}
	for _, p := range w.periods {
		f := files[p]
		if f == 0 {
			w.dirty[p] = true
			if p >= committedLo && p <= committedHi {
				w.noteCorruption(&CorruptionError{File: archiveName(p, w.compressed(p)), Err: errMissing})
				rc.lowerBefore = min(rc.lowerBefore, p)
			}
			continue
		}
		if f != formOf(w.compressed(p)) {
			w.dirty[p] = true // both forms, or the wrong one: rewrite in the right one
		}
		for _, z := range []bool{false, true} {
			if f&formOf(z) == 0 {
				continue
			}
			if err := w.loadArchive(p, z, recs, raws, rc); err != nil {
				return err
			}
		}
	}
	d := w.in.view()
	for _, p := range w.periods {
		r := sortRun(d, recs[p], raws[p])
		if r.len() < len(recs[p]) {
			w.dirty[p] = true // repeated tasks
		}
		w.base[p] = newSegment(d, r)
	}
	return nil
}

// loadArchive reads one archive file into the per-period lists.
func (w *Writer) loadArchive(p int64, compressed bool, recs map[int64][]rec, raws map[int64]map[int]*task.UPID, rc *recovery) error {
	name := archiveName(p, compressed)
	data, err := w.fs.ReadFile(filepath.Join(w.dir, name))
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	content := data
	var ce *CorruptionError
	if compressed {
		var derr error
		content, derr = w.decompress(data)
		if derr != nil {
			// Keep the complete lines decoded before the damage.
			cut := len(content)
			if i := bytes.LastIndexByte(content, '\n'); i+1 < cut {
				cut = i + 1
			}
			ce = &CorruptionError{File: name, Offset: int64(cut), Err: derr}
			content = content[:cut]
		}
	}
	prev := int64(math.MaxInt64)
	lineCE := scanLines(name, content, true, func(t *task.Task) {
		r, raw := w.in.toRec(t)
		if r.start > prev {
			w.dirty[p] = true // not in list order
		}
		prev = r.start
		q, ok := w.periodOf(r.start)
		if q != p || !ok {
			w.dirty[p], w.shrunk[p] = true, true // a task of another period
		}
		if !ok {
			return // older than the retention
		}
		if q != p {
			w.dirty[q] = true
		}
		if raw {
			if raws[q] == nil {
				raws[q] = map[int]*task.UPID{}
			}
			raws[q][len(recs[q])] = &t.UPID
		}
		recs[q] = append(recs[q], r)
	})
	if ce == nil {
		ce = lineCE
	}
	if ce != nil {
		if err := w.keepEvidence(name, data); err != nil {
			return err
		}
		w.brokenArchives = append(w.brokenArchives, name+BrokenSuffix)
		w.noteCorruption(ce)
		rc.lowerBefore = min(rc.lowerBefore, p)
		w.dirty[p] = true
	}
	return nil
}

// clearState forgets cutoffs, tracked and running tasks.
func (w *Writer) clearState() {
	w.cutoffs.reset()
	w.tracked = map[string][]task.UPID{}
	w.trackedShared = false
	w.active = map[string]remoteSet{}
	w.nactive = 0
	w.activeDirty = true
	w.seq = 0
}

// replayJournal applies the journal records the state does not include and
// opens the journal for appending. A damaged tail is cut off (after keeping
// a copy); the records in it may have been acknowledged, so the cutoffs are
// to be capped to the checkpoint's.
func (w *Writer) replayJournal(rc *recovery) error {
	name := filepath.Join(w.dir, JournalFile)
	data, err := w.fs.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read journal: %w", err)
	}
	recs, good, ce := readRecords(data)
	applied := 0
	for i := range recs {
		r := &recs[i]
		if r.Seq <= w.seq {
			continue
		}
		if err := w.replay(r); err != nil {
			ce = &CorruptionError{File: JournalFile, Offset: r.offset, Err: err}
			good = r.offset
			break
		}
		w.seq = r.Seq
		applied++
	}
	if w.journal, err = w.fs.OpenAppend(name, fileMode); err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	w.jsize = int64(len(data))
	w.jrecords = len(recs)
	if ce != nil {
		if err := w.keepEvidence(JournalFile, data); err != nil {
			return err
		}
		w.noteCorruption(ce)
		rc.resetJournal = true
		if err := w.journal.Truncate(good); err != nil {
			return fmt.Errorf("truncate journal: %w", err)
		}
		if err := w.journal.Sync(); err != nil {
			return fmt.Errorf("sync journal: %w", err)
		}
		w.jsize = good
	}
	if applied > 0 {
		w.log.Info().Int("records", applied).Msg("task cache journal replayed")
	}
	return nil
}

// replay applies one journal record to memory.
func (w *Writer) replay(r *record) error {
	switch r.Op {
	case opApply:
		nodes := make([]NodeResult, len(r.Nodes))
		for i, n := range r.Nodes {
			nodes[i] = NodeResult(n)
		}
		p, err := w.prepare(r.Remote, r.tasks, nodes)
		if err != nil {
			return err
		}
		w.applyPrepared(p)
	case opTrack, opUntrack:
		u, err := task.ParseUPID(r.UPID)
		if err != nil {
			return err
		}
		if err := validateTask(r.Remote, &task.Task{Remote: r.Remote, UPID: u}); err != nil {
			return err
		}
		if r.Op == opTrack {
			w.applyTrack(r.Remote, u)
		} else {
			w.applyUntrack(r.Remote, u)
		}
	case opDrop:
		w.applyDrop(r.Remote)
	case opLower:
		w.applyLower(r.Before)
	case opReset:
		w.applyReset(r.Cutoffs)
	}
	return nil
}

// writeRepairs journals and applies the cutoff changes that make the next
// fetches repair what was lost. They go through the journal so that a crash
// before the next checkpoint does not undo them.
func (w *Writer) writeRepairs(rc *recovery) error {
	type repair struct {
		h   recordHeader
		msg string
	}
	var rs []repair
	if rc.stateLost {
		rs = append(rs, repair{recordHeader{Op: opReset}, "task cache state lost: every node is fetched over the whole retention"})
	}
	if rc.resetJournal {
		rs = append(rs, repair{recordHeader{Op: opReset, Cutoffs: w.ckptCutoffs.toMap()},
			"task cache journal damaged: cutoffs back to the last checkpoint"})
	}
	if rc.lowerBefore != math.MaxInt64 {
		rs = append(rs, repair{recordHeader{Op: opLower, Before: rc.lowerBefore},
			"task cache archive damaged: cutoffs back to the start of the damaged period"})
	}
	for i := range rs {
		h := &rs[i].h
		h.Seq = w.seq + 1
		if err := w.writeRecord(h, nil); err != nil {
			return err
		}
		if err := w.replay(&record{recordHeader: *h}); err != nil {
			return err
		}
		w.log.Warn().Msg(rs[i].msg)
	}
	return nil
}
