package metrics

import (
	"maps"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/task"
)

// Outcome metrics (docs/metrics.md): what the tasks of the fleet ended
// with, by remote, worker type and status class.
//
//   - taskfleet_tasks_finished_total{remote,type,status} is a process
//     counter: the finished tasks the cache writer added to the cache
//     since this process started. A task the cache already holds is never
//     added again (the cache drops what it knows), so no task is counted
//     twice, also across restarts: after a restart the counter starts at
//     zero and counts only what was new to the archive. The writer
//     declares the series of every (remote, type) of the archive at zero
//     when it opens the cache, so the first failure after a start is an
//     increase that rate() and increase() see.
//   - taskfleet_tasks_finished_cached{remote,status} (gauge, at scrape
//     time): the finished tasks the cache holds, the archive's totals
//     beside the process counter.
//   - taskfleet_tasks_running{remote,type} (gauge, at scrape time): the
//     running set.
//
// The type label is bounded: the PinnedTaskTypes always have their own
// value; other well-formed types get theirs in the order they are first
// seen, up to MaxTaskTypes of them in the whole process; every further
// type, and any type that is not well formed, is "other", and the
// finished tasks counted as "other" are counted in
// taskfleet_task_types_folded_total{reason} (reason "cap" or
// "malformed"). So taskfleet_tasks_finished_total has at most
// remotes × (len(PinnedTaskTypes) + MaxTaskTypes + 1) × 4 series,
// taskfleet_tasks_running a quarter of that, and
// taskfleet_tasks_finished_cached remotes × 4.

// MaxTaskTypes is how many worker types beyond PinnedTaskTypes get their
// own value of the type label; later ones are "other". PVE and PBS know
// about 150 types together, and a fleet runs a few dozen of them.
const MaxTaskTypes = 64

// OtherType is the type label of the folded types.
const OtherType = "other"

// PinnedTaskTypes always have their own type label, whatever the order in
// which types are seen: the backup and datastore maintenance types that
// the alert rules of docs/metrics.md select.
var PinnedTaskTypes = []string{
	"vzdump",                    // PVE backup (one guest or a job of several)
	"backup",                    // PBS: a backup snapshot written
	"verify", "verificationjob", // PBS verification
	"verify_group", "verify_snapshot", // PBS verification of one group or snapshot
	"sync", "syncjob", // PBS sync from another PBS
	"prune", "prunejob", // PBS prune
	"garbage_collection",             // PBS garbage collection
	"tape-backup", "tape-backup-job", // PBS tape backup
}

// wellFormedType matches the worker types that may be a label value: PVE
// and PBS types are short words of letters, digits, '_' and '-'.
var wellFormedType = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$`)

// typeLabels hands out the values of the type label. Lookups of admitted
// types take no lock: the admitted set is an immutable map replaced on
// each admission (at most MaxTaskTypes times in a process).
type typeLabels struct {
	known atomic.Pointer[map[string]bool]
	mu    sync.Mutex // serializes admissions
}

func newTypeLabels() *typeLabels {
	t := &typeLabels{}
	m := make(map[string]bool, len(PinnedTaskTypes)+MaxTaskTypes+1)
	for _, p := range PinnedTaskTypes {
		m[p] = true
	}
	m[OtherType] = true // a real type "other" shares the folded value
	t.known.Store(&m)
	return t
}

// label returns the type label of typ, and why it was folded into
// "other" ("cap" or "malformed"; "" when it was not).
func (t *typeLabels) label(typ string) (label, folded string) {
	if (*t.known.Load())[typ] {
		return typ, ""
	}
	if !wellFormedType.MatchString(typ) {
		return OtherType, "malformed"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := *t.known.Load()
	if cur[typ] {
		return typ, ""
	}
	if len(cur) >= len(PinnedTaskTypes)+1+MaxTaskTypes {
		return OtherType, "cap"
	}
	next := maps.Clone(cur)
	next[typ] = true
	t.known.Store(&next)
	return typ, ""
}

// outcomes holds the outcome collectors.
type outcomes struct {
	types    *typeLabels
	finished *prometheus.CounterVec // remote, type, status
	folded   *prometheus.CounterVec // reason
	counts   *cacheCounts
}

func newOutcomes() *outcomes {
	o := &outcomes{
		types: newTypeLabels(),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tasks_finished_total",
			Help: "Finished tasks the cache writer added to the cache since this process started, by status class (ok, warning, error, unknown); a task is counted once.",
		}, []string{"remote", "type", "status"}),
		folded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "task_types_folded_total",
			Help: "Finished tasks counted with type \"other\": their type was past the cap of distinct types (cap) or not a plain word (malformed).",
		}, []string{"reason"}),
	}
	o.counts = &cacheCounts{types: o.types}
	o.counts.running = prometheus.NewDesc(namespace+"_tasks_running",
		"Running tasks in the cache.", []string{"remote", "type"}, nil)
	o.counts.cached = prometheus.NewDesc(namespace+"_tasks_finished_cached",
		"Finished tasks the cache holds (its retention), by status class: the archive's totals beside taskfleet_tasks_finished_total.",
		[]string{"remote", "status"}, nil)
	for _, r := range []string{"cap", "malformed"} {
		o.folded.WithLabelValues(r)
	}
	return o
}

func (o *outcomes) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.finished, o.folded, o.counts}
}

// statusLabel is the status label of class c.
func statusLabel(c task.StatusClass) string {
	if c > task.StatusUnknown {
		c = task.StatusUnknown
	}
	return c.String()
}

// maxRecorderKeys bounds the counters a FinishedRecorder keeps; past it,
// it starts over (the counters themselves are kept by the CounterVec).
const maxRecorderKeys = 8192

// FinishedRecorder counts finished tasks in taskfleet_tasks_finished_total.
// It is owned by one goroutine (the cache writer) and is not safe for
// concurrent use: it keeps the counters it used, so counting a task takes
// no lock. Its methods are no-ops on a nil *FinishedRecorder.
type FinishedRecorder struct {
	o       *outcomes
	handles map[recorderKey]recorded
}

type recorderKey struct {
	remote, typ string
	class       task.StatusClass
}

type recorded struct {
	c      prometheus.Counter
	folded prometheus.Counter // nil: the type has its own label
}

// NewFinishedRecorder returns a recorder for the cache writer; nil when m
// is nil.
func (m *Metrics) NewFinishedRecorder() *FinishedRecorder {
	if m == nil {
		return nil
	}
	return &FinishedRecorder{o: m.outcomes, handles: map[recorderKey]recorded{}}
}

// Add counts n finished tasks of remote with worker type typ and status
// class class.
func (r *FinishedRecorder) Add(remote, typ string, class task.StatusClass, n int) {
	if r == nil || n <= 0 {
		return
	}
	h := r.handle(recorderKey{remote: remote, typ: typ, class: class})
	h.c.Add(float64(n))
	if h.folded != nil {
		h.folded.Add(float64(n))
	}
}

// Declare creates the four status series of remote and typ at zero (if
// they do not exist yet), so that the first task counted in them is an
// increase Prometheus sees.
func (r *FinishedRecorder) Declare(remote, typ string) {
	if r == nil {
		return
	}
	for c := task.StatusOK; c <= task.StatusUnknown; c++ {
		r.handle(recorderKey{remote: remote, typ: typ, class: c})
	}
}

// Forget deletes the series of remote, for a remote dropped from the
// cache: the only place they are deleted (Metrics.ForgetRemote leaves
// them). The writer calls it in order with its batches, so a batch of the
// remote counted after the remote was removed does not leave series
// behind, and the recorder never keeps a counter of a deleted series.
func (r *FinishedRecorder) Forget(remote string) {
	if r == nil {
		return
	}
	r.o.finished.DeletePartialMatch(prometheus.Labels{"remote": remote})
	for k := range r.handles {
		if k.remote == remote {
			delete(r.handles, k)
		}
	}
}

func (r *FinishedRecorder) handle(k recorderKey) recorded {
	if len(r.handles) >= maxRecorderKeys {
		clear(r.handles)
	}
	if h, ok := r.handles[k]; ok {
		return h
	}
	label, folded := r.o.types.label(k.typ)
	h := recorded{c: r.o.finished.WithLabelValues(k.remote, label, statusLabel(k.class))}
	if folded != "" {
		h.folded = r.o.folded.WithLabelValues(folded)
	}
	r.handles[k] = h
	return h
}

// RemoteType is a remote and a worker type.
type RemoteType struct{ Remote, Type string }

// CacheCounts are the cache's task counts.
type CacheCounts struct {
	// Running counts the running tasks by remote and worker type (the
	// raw types: the metrics fold them).
	Running map[RemoteType]int
	// Finished counts the finished tasks by remote and status class.
	Finished map[string]task.Counts
}

// SetCacheCountsFunc sets the function that taskfleet_tasks_running and
// taskfleet_tasks_finished_cached report at each scrape, typically counts
// of the latest cache snapshot; f returns false while there is none, and
// the metrics have no series then, as before SetCacheCountsFunc is called.
// f must be safe for concurrent use; it runs inside the scrape.
func (m *Metrics) SetCacheCountsFunc(f func() (CacheCounts, bool)) {
	if m == nil {
		return
	}
	if f == nil {
		m.outcomes.counts.f.Store(nil)
		return
	}
	m.outcomes.counts.f.Store(&f)
}

// cacheCounts is the scrape-time collector of the running and cached
// finished tasks.
type cacheCounts struct {
	types           *typeLabels
	running, cached *prometheus.Desc
	f               atomic.Pointer[func() (CacheCounts, bool)]
}

// Describe implements prometheus.Collector.
func (c *cacheCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.running
	ch <- c.cached
}

// Collect implements prometheus.Collector.
func (c *cacheCounts) Collect(ch chan<- prometheus.Metric) {
	f := c.f.Load()
	if f == nil {
		return
	}
	counts, ok := (*f)()
	if !ok {
		return
	}
	running := map[RemoteType]int{}
	for k, n := range counts.Running {
		l, _ := c.types.label(k.Type)
		running[RemoteType{k.Remote, l}] += n
	}
	for k, n := range running {
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(n), k.Remote, k.Type)
	}
	for remote, n := range counts.Finished {
		for _, v := range []struct {
			status string
			n      int
		}{{"ok", n.OK}, {"warning", n.Warning}, {"error", n.Error}, {"unknown", n.Unknown}} {
			ch <- prometheus.MustNewConstMetric(c.cached, prometheus.GaugeValue, float64(v.n), remote, v.status)
		}
	}
}
