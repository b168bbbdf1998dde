package actors

import (
	"cmp"
	"maps"
	"math"
	"slices"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/task"
)

// The outcome metrics of the cache writer (docs/metrics.md). The writer
// counts what each batch added to the cache in
// taskfleet_tasks_finished_total (countFinished). A task the cache held
// already adds nothing, so a task is counted once however often it is
// fetched; a restart reopens the archive and counts only what is new to
// it. The writer is the only owner of its
// metrics.FinishedRecorder, which takes no lock per batch.

// countFinished adds to rec the finished tasks that the batch of remote
// (tasks) added to the cache between the snapshots prev and next. The
// cache only ever adds finished tasks in a batch, so their number is the
// growth of the finished tasks from prev to next; which ones they are
// is found the cheapest way that is exact:
//
//   - none were added: nothing to count (a refresh of a quiet remote);
//   - as many as the batch has finished tasks: all of them (a backfill,
//     a refresh without overlap), counted from the batch;
//   - else (the batch fetched some known tasks again, or some were not
//     kept: older than the retention) the cache's statistics of remote
//     after the batch minus those before it, over the batch's start
//     times, where every task it can add lies.
func countFinished(rec *metrics.FinishedRecorder, prev, next *cache.Snapshot, remote string, tasks []task.Task) {
	if rec == nil || prev == nil || next == nil || prev == next {
		return
	}
	added := (next.Len() - next.RunningLen()) - (prev.Len() - prev.RunningLen())
	if added <= 0 {
		return
	}
	n := 0
	for i := range tasks {
		if !tasks[i].Running() {
			n++
		}
	}
	if n != added {
		countByStatistics(rec, prev, next, remote, tasks)
		return
	}
	// A batch has few types: add them up before touching the counters.
	type typeClass struct {
		typ   string
		class task.StatusClass
	}
	sums := map[typeClass]int{}
	for i := range tasks {
		if t := &tasks[i]; !t.Running() {
			sums[typeClass{t.UPID.Type, t.Class()}]++
		}
	}
	for k, n := range sums {
		rec.Add(remote, k.typ, k.class, n)
	}
}

// countByStatistics counts the growth of the statistics of remote from
// prev to next over the start times of the batch's finished tasks.
func countByStatistics(rec *metrics.FinishedRecorder, prev, next *cache.Snapshot, remote string, tasks []task.Task) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range tasks {
		if !tasks[i].Running() {
			lo, hi = min(lo, tasks[i].UPID.StartTime), max(hi, tasks[i].UPID.StartTime)
		}
	}
	if lo > hi {
		return // no finished task in the batch
	}
	// A bound of 0 is no bound (the filter's convention), which is what a
	// start time of 0 or less needs.
	f := task.Filter{Remote: remote, Since: max(lo, 0), Until: max(hi, 0)}
	before := prev.Statistics(f).ByType
	for typ, now := range next.Statistics(f).ByType {
		was := before[typ]
		rec.Add(remote, typ, task.StatusOK, now.OK-was.OK)
		rec.Add(remote, typ, task.StatusWarning, now.Warning-was.Warning)
		rec.Add(remote, typ, task.StatusError, now.Error-was.Error)
		rec.Add(remote, typ, task.StatusUnknown, now.Unknown-was.Unknown)
	}
}

// declareFinished creates the counters of every remote and type the cache
// holds finished tasks of, at zero, so that Prometheus sees the first
// task counted after a start as an increase. The most frequent types come
// first, so that when the archive has more types than the type label's
// bound, the same (frequent) ones get their own value after every start.
func declareFinished(rec *metrics.FinishedRecorder, s *cache.Snapshot) {
	if rec == nil || s == nil {
		return
	}
	byType := map[string][]string{} // type -> remotes
	total := map[string]int{}
	for _, r := range s.Remotes() {
		for typ, n := range s.Statistics(task.Filter{Remote: r}).ByType {
			byType[typ] = append(byType[typ], r)
			total[typ] += n.OK + n.Warning + n.Error + n.Unknown
		}
	}
	types := slices.SortedFunc(maps.Keys(byType), func(a, b string) int {
		return cmp.Or(cmp.Compare(total[b], total[a]), cmp.Compare(a, b))
	})
	for _, typ := range types {
		for _, r := range byType[typ] {
			rec.Declare(r, typ)
		}
	}
}

// cacheCounts returns the counts behind taskfleet_tasks_running and
// taskfleet_tasks_finished_cached for the snapshot s (at scrape time), for
// the remotes s polls (Snapshot.Remotes): the cache keeps the history of a
// remote removed from the configuration until it ages out, but its series
// are forgotten.
func cacheCounts(s *cache.Snapshot) metrics.CacheCounts {
	remotes := s.Remotes()
	c := metrics.CacheCounts{Running: map[metrics.RemoteType]int{}, Finished: make(map[string]task.Counts, len(remotes))}
	all := s.Statistics(task.Filter{}).ByRemote
	for _, r := range remotes {
		if n, ok := all[r]; ok {
			c.Finished[r] = n
		}
		if s.RunningLen() > 0 {
			for _, t := range s.Running(r) {
				c.Running[metrics.RemoteType{Remote: r, Type: t.UPID.Type}]++
			}
		}
	}
	return c
}
