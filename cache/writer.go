package cache

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/task"
)

// ErrClosed is returned by the methods of a closed Writer.
var ErrClosed = errors.New("cache writer closed")

// ErrFailed wraps the I/O error after which a Writer refuses to write.
var ErrFailed = errors.New("cache writer failed")

// Writer is the single owner of a cache directory: its files and the
// mutable in-memory state. After every change it publishes an immutable
// Snapshot to its Latest, which readers use without waiting for it.
//
// A Writer is NOT safe for concurrent use: exactly one goroutine (the
// cache-writer actor) calls its methods. Only one Writer (one process) may
// use a directory at a time: Open locks it (see LockFile).
//
// When a method fails with an I/O error (anything but invalid input), the
// Writer refuses further writes with an error wrapping ErrFailed. Close it
// (or Abandon it) and Open the directory again: Open recovers from whatever
// the files hold. Readers keep the last published snapshot meanwhile.
//
// Costs, for the owner's scheduling: Apply, Track, Untrack and DropRemote
// append one journal record and fsync it; Apply also sorts and indexes the
// batch (about 1.5 µs of CPU per task). ApplyJournal, and the merge Apply
// runs first when the journal has passed Options.JournalMaxBytes, rewrite
// the archive file of every period that got tasks since the last merge
// (today's only, in steady state: a fraction of a second for 150k tasks;
// all of them after a backfill of the retention: seconds). MaybeRotate
// returns at once unless a period ended; then it merges, writes the new
// file and compresses one (a fraction of a second for a 150k-task day).
// Open reads every archive file (seconds for 1M tasks). Call ApplyJournal
// and MaybeRotate hourly; docs/benchmarks.md has measurements.
type Writer struct {
	opts  Options
	fs    fsys
	dir   string
	log   zerolog.Logger
	rot   int64 // rotation, seconds
	hooks *hooks

	in      *interner
	periods []int64              // kept archive periods, ascending; len == Retention
	base    map[int64]*segment   // archived tasks per period
	recent  []*segment           // tasks applied since the last checkpoint, oldest first
	active  map[string]remoteSet // running tasks per remote
	nactive int

	// The published form of active (see running.go): levels of running
	// tasks, the tasks added since the last publish, and whether the
	// levels must be rebuilt from active.
	levels      []*segment
	runAdded    map[recKey]*activeTask
	activeDirty bool
	levelMisses int // running tasks not found in the levels (a bug; tests check it stays 0)

	cutoffs       cutoffWriter           // remote -> node -> cutoff
	ckptCutoffs   cutoffTable            // cutoffs as of the state file
	tracked       map[string][]task.UPID // remote -> tracked tasks; slices are never changed in place
	trackedShared bool

	disk           map[int64]diskForm // archive files on disk
	brokenArchives []string           // names of .broken copies of archive files
	dirty          map[int64]bool     // periods whose file must be written
	shrunk         map[int64]bool     // dirty periods that lost tasks to other periods: written last

	lockf    io.Closer // the directory's lock, held from Open to Close
	journal  wfile
	jsize    int64
	jrecords int
	seq      uint64 // last journal record written

	enc *zstd.Encoder
	dec *zstd.Decoder
	buf []byte

	latest      *Latest
	stats       Stats
	corruptions []*CorruptionError
	failed      error
	closed      bool
}

// remoteSet is the running tasks of one remote.
type remoteSet map[recKey]*activeTask

type activeTask struct {
	rec  rec
	raw  *task.UPID
	node string // node key for cutoffs
}

// maxKeptBuffer bounds the record buffer the Writer keeps between batches.
const maxKeptBuffer = 4 << 20

// Stats are counters for metrics.
type Stats struct {
	JournalBytes   int64 // journal size now
	JournalRecords int   // records in the journal now
	Files          int   // archive files on disk
	Tasks          int   // cached tasks, running and finished
	Running        int   // running tasks (the active set)
	Merges         int64 // checkpoints (journal merges) since Open
	Rotations      int64 // rotations since Open
	Corruptions    int64 // damaged files found since Open (see Corruptions)
	SlowSyncs      int64 // fsyncs that took SlowSyncThreshold or longer since Open
	Syncs          int64 // fsyncs that succeeded since Open: a change reached the disk

	LastMerge    time.Duration // duration of the last checkpoint
	LastRotation time.Duration // duration of the last rotation, compression included
}

// Batch is the result of fetching one remote's tasks.
type Batch struct {
	Remote string
	Tasks  []task.Task  // running and finished tasks, all of Remote
	Nodes  []NodeResult // one per node fetched; cutoffs only advance for OK nodes
}

// NodeResult says whether the fetch of one node succeeded. For a Proxmox
// Backup Server the node is "localhost".
type NodeResult struct {
	Node string
	OK   bool
}

// Latest returns where the Writer publishes its snapshots.
func (w *Writer) Latest() *Latest { return w.latest }

// Stats returns the Writer's counters.
func (w *Writer) Stats() Stats {
	st := w.stats
	st.JournalBytes = w.jsize
	st.JournalRecords = w.jrecords
	for _, f := range w.disk {
		if f&formPlain != 0 {
			st.Files++
		}
		if f&formZst != 0 {
			st.Files++
		}
	}
	s := w.latest.Load()
	st.Tasks, st.Running = s.Len(), s.RunningLen()
	return st
}

// Corruptions returns the damage found since Open (at most the last 32),
// oldest first. Each was repaired: see doc.go, "Corruption".
func (w *Writer) Corruptions() []*CorruptionError {
	return append([]*CorruptionError(nil), w.corruptions...)
}

// Apply adds a batch durably: it appends the batch to the journal, fsyncs
// it, updates the state and publishes a new snapshot. When it returns nil
// the batch survives any crash. Adding a task again is harmless: a task is
// stored once, finished tasks win over running ones, and a task first
// seen running moves to the archive when seen finished. Finished tasks
// older than the retention are not kept. Cutoffs advance only for the OK
// nodes (see doc.go for the rule).
//
// When the journal has grown past Options.JournalMaxBytes, Apply first
// merges it (see ApplyJournal), which takes longer.
func (w *Writer) Apply(b Batch) error {
	if err := w.usable(); err != nil {
		return err
	}
	if len(b.Tasks) == 0 && len(b.Nodes) == 0 {
		return nil
	}
	p, err := w.prepare(b.Remote, b.Tasks, b.Nodes)
	if err != nil {
		return fmt.Errorf("apply batch: %w", err)
	}
	if w.jsize > w.opts.JournalMaxBytes {
		if err := w.ApplyJournal(); err != nil {
			return err
		}
	}
	h := recordHeader{Seq: w.seq + 1, Op: opApply, Remote: p.remote, Tasks: len(p.recs)}
	for _, n := range b.Nodes {
		h.Nodes = append(h.Nodes, nodeJSON(n))
	}
	data, start, err := beginFrame(w.buf[:0], &h)
	if err != nil {
		return err
	}
	d := w.in.view()
	for i := range p.recs {
		data = d.appendLine(data, &p.recs[i], p.raw(i))
	}
	if data, err = endFrame(data, start); err != nil {
		return err
	}
	if cap(data) <= maxKeptBuffer {
		w.buf = data[:0] // reused by the next record
	} else {
		w.buf = nil
	}
	if err := w.appendJournal(data); err != nil {
		return err
	}
	w.seq = h.Seq
	w.applyPrepared(p)
	w.publish()
	return nil
}

// Track adds a task the caller started to the tracked tasks, durably. A
// tracked task is also in the active set, as running, until a batch
// shows it finished; then it is untracked. Tracking a task the archive
// already holds finished, or one already tracked, does nothing.
func (w *Writer) Track(remote string, upid task.UPID) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := validateTask(remote, &task.Task{Remote: remote, UPID: upid}); err != nil {
		return fmt.Errorf("track task: %w", err)
	}
	if !w.trackChanges(remote, upid) {
		return nil
	}
	h := recordHeader{Seq: w.seq + 1, Op: opTrack, Remote: remote, UPID: upid.String()}
	if err := w.writeRecord(&h, nil); err != nil {
		return err
	}
	w.applyTrack(remote, upid)
	w.publish()
	return nil
}

// Untrack removes a task from the tracked tasks and the active set,
// durably (for a task whose status can no longer be polled). A later batch
// that lists it running adds it to the active set again.
func (w *Writer) Untrack(remote string, upid task.UPID) error {
	if err := w.usable(); err != nil {
		return err
	}
	if trackedIndex(w.tracked[remote], upid) < 0 {
		return nil
	}
	h := recordHeader{Seq: w.seq + 1, Op: opUntrack, Remote: remote, UPID: upid.String()}
	if err := w.writeRecord(&h, nil); err != nil {
		return err
	}
	w.applyUntrack(remote, upid)
	w.publish()
	return nil
}

// DropRemote forgets a remote removed from the configuration, durably: its
// cutoffs, tracked tasks and running tasks. Its archived tasks stay until
// they age out of the retention.
func (w *Writer) DropRemote(remote string) error {
	if err := w.usable(); err != nil {
		return err
	}
	if len(w.cutoffs.nodes(remote)) == 0 && len(w.tracked[remote]) == 0 && len(w.active[remote]) == 0 {
		return nil
	}
	h := recordHeader{Seq: w.seq + 1, Op: opDrop, Remote: remote}
	if err := w.writeRecord(&h, nil); err != nil {
		return err
	}
	w.applyDrop(remote)
	w.publish()
	return nil
}

// ApplyJournal merges the changes since the last checkpoint into the
// archive files and writes a new checkpoint (state file), then empties the
// journal. It rewrites the archive file of every period that got tasks
// (usually today's), so it takes time in proportion to that file; call it
// hourly. Queries are not affected while it runs.
func (w *Writer) ApplyJournal() error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.jsize == 0 && len(w.recent) == 0 && len(w.dirty) == 0 {
		return nil
	}
	if err := w.checkpoint(); err != nil {
		return w.fail(fmt.Errorf("apply journal: %w", err))
	}
	// As the checkpoint folds the recent segments into the archive, fold
	// the levels of running tasks into one (O(n log n), hourly), so that
	// queries see few segments.
	w.activeDirty = true
	w.publish()
	return nil
}

// Close merges the journal, syncs and closes the files. The Latest keeps
// serving the last snapshot. After an earlier failure Close only releases
// the files and returns nil (the failure was already returned).
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	var err error
	if w.failed == nil {
		if err = w.ApplyJournal(); err == nil {
			w.log.Info().Str("file", w.dir).Msg("task cache closed")
		}
	}
	w.closeFiles()
	w.closed = true
	return err
}

func (w *Writer) closeFiles() {
	if w.journal != nil {
		w.journal.Close()
		w.journal = nil
	}
	w.releaseZstd()
	w.unlock()
}

func (w *Writer) usable() error {
	switch {
	case w.closed:
		return ErrClosed
	case w.failed != nil:
		return w.failed
	}
	return nil
}

// fail makes the Writer refuse further writes and returns err wrapped in
// ErrFailed.
func (w *Writer) fail(err error) error {
	if w.failed == nil {
		w.failed = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return w.failed
}

// writeRecord frames and appends a journal record.
func (w *Writer) writeRecord(h *recordHeader, lines []byte) error {
	data, err := frame(nil, h, lines)
	if err != nil {
		return err
	}
	if err := w.appendJournal(data); err != nil {
		return err
	}
	w.seq = h.Seq
	return nil
}

func (w *Writer) now() time.Time { return w.opts.Now() }

// newest returns the start of the newest archive period.
func (w *Writer) newest() int64 { return w.periods[len(w.periods)-1] }

// alignDown returns the start of the period holding Unix time t.
func (w *Writer) alignDown(t int64) int64 {
	p := t - t%w.rot
	if t%w.rot < 0 {
		p -= w.rot
	}
	return p
}

// periodOf returns the kept period a task started at t belongs to (the
// newest period also takes later start times), or false when t is older
// than the retention.
func (w *Writer) periodOf(t int64) (int64, bool) {
	if t < w.periods[0] {
		return 0, false
	}
	return min(w.alignDown(t), w.newest()), true
}

// publish makes the current state the Latest snapshot. It costs what
// changed since the last publish (the levels of running tasks are
// maintained incrementally, see running.go) plus one small slice per
// segment: O(log n + Retention).
func (w *Writer) publish() {
	w.publishRunning()
	segs := make([]*segment, 0, len(w.levels)+len(w.recent)+len(w.periods))
	n := 0
	for i := len(w.levels) - 1; i >= 0; i-- {
		segs = append(segs, w.levels[i])
		n += w.levels[i].liveLen()
	}
	for i := len(w.recent) - 1; i >= 0; i-- {
		segs = append(segs, w.recent[i])
		n += w.recent[i].len()
	}
	for i := len(w.periods) - 1; i >= 0; i-- {
		if seg := w.base[w.periods[i]]; seg != nil && seg.len() > 0 {
			segs = append(segs, seg)
			n += seg.len()
		}
	}
	w.trackedShared = true
	w.latest.store(&Snapshot{
		dict:    w.in.view(),
		segs:    segs,
		nrun:    len(w.levels),
		n:       n,
		running: w.nactive,
		cutoffs: w.cutoffs.share(),
		tracked: w.tracked,
		at:      w.now(),
	})
}
