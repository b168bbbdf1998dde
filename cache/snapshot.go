package cache

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// Snapshot is the state of the cache after one write: every cached task
// (running and finished), the cutoffs and the tracked tasks. It is
// immutable and safe for concurrent use by any number of goroutines; its
// methods take no lock and do no I/O. Snapshots share their storage, so
// holding an old one costs little.
type Snapshot struct {
	dict    *dict
	segs    []*segment // levels of running tasks, then recent batches, then archive periods newest first
	nrun    int        // segs[:nrun] are the levels of running tasks
	n       int
	running int

	cutoffs cutoffTable            // remote -> node -> cutoff
	tracked map[string][]task.UPID // remote -> tracked tasks, in list order
	at      time.Time
}

var emptySnapshot = &Snapshot{
	dict:    newInterner().view(),
	tracked: map[string][]task.UPID{},
}

// Latest is where a Writer publishes its snapshots. Load is safe for
// concurrent use and never blocks. The zero value is ready to use and
// holds an empty snapshot until a Writer publishes.
type Latest struct {
	p atomic.Pointer[Snapshot]
}

// Load returns the most recently published snapshot (never nil).
func (l *Latest) Load() *Snapshot {
	if s := l.p.Load(); s != nil {
		return s
	}
	return emptySnapshot
}

func (l *Latest) store(s *Snapshot) { l.p.Store(s) }

// Len returns the number of cached tasks, running and finished.
func (s *Snapshot) Len() int { return s.n }

// RunningLen returns the number of running tasks (the active set).
func (s *Snapshot) RunningLen() int { return s.running }

// Time returns when the snapshot was published (the Writer's clock).
func (s *Snapshot) Time() time.Time { return s.at }

// Cutoff returns the cutoff of a node of a remote: fetch that node's tasks
// started at or after it. ok is false when the node has none yet; the
// caller then fetches the whole retention period. For a Proxmox Backup
// Server the node is "localhost".
func (s *Snapshot) Cutoff(remote, node string) (cutoff int64, ok bool) {
	cutoff, ok = s.cutoffs.get(remote, node)
	return cutoff, ok
}

// Nodes returns the nodes of a remote that have a cutoff, sorted.
func (s *Snapshot) Nodes(remote string) []string {
	nodes := make([]string, 0, len(s.cutoffs.nodes(remote)))
	for n := range s.cutoffs.nodes(remote) {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes
}

// Remotes returns the remotes that have a cutoff, a tracked task or a
// running task, sorted.
func (s *Snapshot) Remotes() []string {
	set := map[string]bool{}
	s.cutoffs.each(func(r string, _ map[string]int64) { set[r] = true })
	for r := range s.tracked {
		set[r] = true
	}
	for _, lv := range s.segs[:s.nrun] {
		idx := &lv.byRemote
		for i, code := range idx.codes {
			for _, pos := range idx.pos[idx.off[i]:idx.off[i+1]] {
				if !lv.dead.has(int(pos)) {
					set[s.dict.remotes[code]] = true
					break
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Tracked returns the tracked tasks of a remote, newest first (none for
// ""; AllTracked returns those of every remote).
func (s *Snapshot) Tracked(remote string) []task.UPID {
	return slices.Clone(s.tracked[remote])
}

// AllTracked returns the tracked tasks of every remote, sorted by remote
// and then newest first.
func (s *Snapshot) AllTracked() []task.RemoteUPID {
	remotes := make([]string, 0, len(s.tracked))
	for r := range s.tracked {
		remotes = append(remotes, r)
	}
	slices.Sort(remotes)
	var out []task.RemoteUPID
	for _, r := range remotes {
		for _, u := range s.tracked[r] {
			out = append(out, task.RemoteUPID{Remote: r, UPID: u})
		}
	}
	return out
}

// Running returns the running tasks of a remote (its part of the active
// set, tracked tasks included) in list order.
func (s *Snapshot) Running(remote string) []task.Task {
	if s.running == 0 {
		return nil
	}
	code, ok := s.dict.remoteIdx.lookup(s.dict.remotes, remote)
	if !ok {
		return nil
	}
	var out []task.Task
	for _, lv := range s.segs[:s.nrun] {
		for _, pos := range lv.byRemote.list(code) {
			if !lv.dead.has(int(pos)) {
				out = append(out, lv.at(s.dict, int(pos)))
			}
		}
	}
	if s.nrun > 1 {
		slices.SortFunc(out, task.Compare)
	}
	return out
}

// trackedIndex returns the index of u in list, or -1.
func trackedIndex(list []task.UPID, u task.UPID) int {
	text := u.String()
	for i, v := range list {
		if v.StartTime == u.StartTime && v.String() == text {
			return i
		}
	}
	return -1
}

// sortUPIDs sorts UPIDs in list order (newest first, then by text).
func sortUPIDs(list []task.UPID) {
	slices.SortFunc(list, func(a, b task.UPID) int {
		if a.StartTime != b.StartTime {
			if a.StartTime > b.StartTime {
				return -1
			}
			return 1
		}
		return strings.Compare(a.String(), b.String())
	})
}
