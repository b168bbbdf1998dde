package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// remoteClient is what a poller needs from its remote's client
// (*proxmox.Client satisfies it).
type remoteClient interface {
	Nodes(ctx context.Context) ([]proxmox.Node, error)
	FetchTasks(ctx context.Context, node string, since int64) (proxmox.FetchResult, error)
	TaskStatus(ctx context.Context, upid task.UPID) (proxmox.TaskStatus, error)
	Stats() proxmox.Stats
	Close()
}

// MaxStatusChecks bounds the status requests of one poll. Tracked tasks
// (at most MaxTracked) are asked about on every poll, running tasks in
// rotation with the rest, so each running task is asked about within
// ceil(running / (MaxStatusChecks - MaxTracked)) running-task checks.
const MaxStatusChecks = 50

// clockTolerance is how far a cutoff may be ahead of a node's clock (its
// Date header has a one-second resolution) before the cutoff is pulled back.
const clockTolerance = 5 * time.Second

// pullBackMargin widens a pulled-back window: tasks may start while the
// answer that read the clock was on its way.
const pullBackMargin = time.Minute

// Stages of a poll at which the test hook (pollerDeps.hook) is called
// outside the poller's mailbox; the hook may panic to inject a fault.
type fetchStage string

const (
	stageFetch  fetchStage = "fetch"  // in the fetch goroutine, before any request
	stageWorker fetchStage = "worker" // in a worker goroutine, before each request
	stageDecode fetchStage = "decode" // in the goroutine of a request, before its body is decoded
)

// fetchJob is one poll of a remote, run in its own goroutine. It only reads
// its fields and the immutable snapshot, and returns its result as a
// message: it shares no mutable state with the poller.
type fetchJob struct {
	remote    string
	kind      task.Kind
	gen       uint64
	refresh   bool        // renew the node list and fetch every node since its cutoff
	full      bool        // a full refresh, no change detection (detect.go)
	guests    bool        // fetch the guest list (set for PVE only; guestlist.go)
	guestEnd  int64       // newest end of a guest-changing task the poller knows (guestlist.go)
	nodes     []string    // cached node list (used when not refreshing)
	check     []task.UPID // tracked and running tasks whose status to check
	tracked   map[task.UPID]bool
	snap      *cache.Snapshot
	retention time.Duration
	workers   int // parallel requests (the client caps them as well)
	client    remoteClient
	clocks    map[string]proxmox.Clock // the last clock reading of each node
	lastOK    map[string]time.Time     // when each node was last fetched completely
	hook      func(fetchStage)         // test knob, may panic; nil: none

	// Change detection's view of the cluster list (detect.go).
	fromList  map[string][]task.Task // nodes the list stands in for: their new tasks
	listState map[task.UPID]bool     // the listed tasks: running?
	listClock proxmox.Clock          // the list's Date header
	failing   map[string]bool        // nodes whose last fetch failed
}

// workerPanic carries a worker's panic to the goroutine that waits for it.
type workerPanic struct {
	value any
	stack []byte
}

// nodeKey is the node a task is listed under: PBS lists every task under
// "localhost", whatever host name its UPID carries.
func nodeKey(k task.Kind, u task.UPID) string {
	if k == task.PBS {
		return "localhost"
	}
	return u.Node
}

func (j *fetchJob) stage(s fetchStage) {
	if j.hook != nil {
		j.hook(s)
	}
}

// settleStatus is the status of a running task that can no longer be
// asked about: PVE's own word for a task whose end it did not record.
const settleStatus = "unknown"

func (j *fetchJob) run(ctx context.Context) *messages.FetchFinished {
	j.stage(stageFetch)
	for _, u := range j.check {
		if j.tracked[u] {
			// A user waits for this task: its requests go first (urgent.go).
			ctx = withUrgency(ctx)
			break
		}
	}
	start := time.Now()
	res := &messages.FetchFinished{Gen: j.gen, Refresh: j.refresh}
	res.Batch.Remote, res.Batch.Seq = j.remote, j.gen
	var errs []error

	nodes := j.nodes
	offline := map[string]bool{}
	listed := j.clusterList(ctx, &res.Requests) // detect.go
	changed, detected := j.detectChanges(listed)
	if j.refresh && !detected || len(nodes) == 0 {
		ns, err := j.client.Nodes(ctx)
		res.Requests++
		if err != nil {
			res.Err, res.Duration = err, time.Since(start) // already "list nodes: ..."
			return res
		}
		nodes = nodes[:0:0]
		for _, n := range ns {
			nodes = append(nodes, n.Name)
			if !n.Online {
				offline[n.Name] = true
			}
		}
		res.Nodes = nodes
	}

	// Status checks: which tracked or running tasks have finished, and
	// which can no longer be asked about? The cluster list answers for
	// the untracked ones it shows (detect.go).
	fromList := j.settleFromList(listed)
	finished := j.checkStatuses(ctx, res)
	maps.Copy(finished, fromList)

	// Nodes to fetch: all on a refresh, else those where a task finished.
	// A node is fetched from its cutoff (so the fetch covers its whole
	// window and may advance the cutoff), or from the retention floor
	// when it has none; from earlier when a finished task started before
	// that, so that the task's final state is in the list; not for a
	// task whose end the cluster list shows for a node it stands in for.
	since := map[string]int64{}
	complete := map[string]bool{}
	floor := time.Now().Add(-j.retention).Unix()
	earliest := map[string]int64{}
	for u := range finished {
		n := nodeKey(j.kind, u)
		if j.listShowsFinished(n, u) { // detect.go
			continue
		}
		if s, ok := earliest[n]; !ok || u.StartTime < s {
			earliest[n] = u.StartTime
		}
		since[n] = 0
	}
	if j.refresh {
		for _, n := range nodes {
			if detected && !changed[n] {
				continue // the cluster list stands in for it (detect.go)
			}
			since[n] = 0
			complete[n] = true
		}
	}
	for n := range since {
		if c, ok := j.snap.Cutoff(j.remote, n); ok {
			since[n], complete[n] = c, true
		} else if complete[n] {
			since[n] = floor
		} else {
			since[n] = earliest[n]
		}
		if e, ok := earliest[n]; ok && e < since[n] {
			since[n] = max(e, floor)
		}
	}

	type nodeFetch struct {
		node    string
		tasks   []task.Task
		reqs    int
		skipped []error
		clock   messages.NodeClock
		hasTime bool
		err     error
	}
	var (
		mu      sync.Mutex
		fetched []nodeFetch
		order   = slices.Sorted(maps.Keys(since))
	)
	parallel(len(order), j.workers, func(i int) {
		j.stage(stageWorker)
		n := order[i]
		f := nodeFetch{node: n}
		if offline[n] {
			f.err = &proxmox.NodeOfflineError{Remote: j.remote, Node: n, Reason: "the cluster lists it offline"}
		} else {
			f.tasks, f.reqs, f.skipped, f.clock, f.hasTime, f.err = j.fetchNode(ctx, n, since[n], floor)
		}
		mu.Lock()
		fetched = append(fetched, f)
		mu.Unlock()
	})
	slices.SortFunc(fetched, func(a, b nodeFetch) int { return strings.Compare(a.node, b.node) })
	okNodes := map[string]bool{}
	inBatch := map[task.UPID]bool{}
	for _, f := range fetched {
		res.Requests += f.reqs
		for _, e := range f.skipped {
			if len(res.Skipped) < messages.MaxSkipped {
				res.Skipped = append(res.Skipped, e)
			} else {
				res.Omitted++
			}
		}
		for _, t := range f.tasks {
			inBatch[t.UPID] = true
		}
		res.Batch.Tasks = append(res.Batch.Tasks, f.tasks...)
		res.Batch.Nodes = append(res.Batch.Nodes, messages.NodeResult{Node: f.node, OK: f.err == nil && complete[f.node]})
		if f.hasTime {
			res.Clocks = append(res.Clocks, f.clock)
		}
		if f.err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", f.node, f.err))
		} else {
			okNodes[f.node] = true
		}
	}
	j.addFromList(res, since, okNodes, inBatch) // detect.go
	settledAt := j.remoteNow(res.Clocks)
	// A finished task is settled once its node was fetched: its final
	// state is in this batch, or, when the node no longer lists it, the
	// exit status its status answer gave. A tracked one is dropped from
	// tracking; when no list has it, only dropped: PBS answers a UPID it
	// never ran as "stopped", and nothing but the track request said the
	// task existed. When the cluster list stands in for its node and
	// shows it finished, its end is in this batch (addFromList) or in the
	// cache already.
	for _, u := range slices.SortedFunc(maps.Keys(finished), compareUPID) {
		n := nodeKey(j.kind, u)
		_, fetchedNode := since[n]
		listEnd := !fetchedNode && j.listShowsFinished(n, u)
		if !okNodes[n] && !listEnd {
			continue
		}
		switch {
		case listEnd:
		case j.tracked[u] && !inBatch[u]:
			res.Gone = append(res.Gone, messages.GoneTask{UPID: u, Reason: proxmox.GoneNoTask})
		case !inBatch[u]:
			status := finished[u]
			if status == "" {
				status = settleStatus
			}
			res.Batch.Tasks = append(res.Batch.Tasks, task.Task{Remote: j.remote, UPID: u, EndTime: max(u.StartTime, settledAt), Status: status})
		}
		if j.tracked[u] {
			res.Batch.Untrack = append(res.Batch.Untrack, u)
		}
	}
	// A task that can no longer be asked about ends now. A running task
	// taskfleet saw in a list is settled with status "unknown" (as PVE
	// reports a task whose end it lost). A tracked one ends tracking; it
	// is settled as well when its node left the cluster (a node the
	// remote had: it has a cutoff), and only dropped when the node does
	// not know it or never was in the cluster: then nothing but the track
	// request ever said it existed.
	for _, g := range res.Gone {
		if j.tracked[g.UPID] {
			if !slices.Contains(res.Batch.Untrack, g.UPID) {
				res.Batch.Untrack = append(res.Batch.Untrack, g.UPID)
			}
			if !j.nodeLeft(g) {
				continue
			}
		}
		if !inBatch[g.UPID] {
			res.Batch.Tasks = append(res.Batch.Tasks, task.Task{Remote: j.remote, UPID: g.UPID, EndTime: max(g.UPID.StartTime, settledAt), Status: settleStatus})
		}
	}
	listAt := j.remoteNow(res.Clocks)
	j.fetchGuests(ctx, res) // backups.go
	if j.kind == task.PVE {
		at := listAt
		if !res.GuestsFetched {
			at = 0
		}
		res.GuestsEnd, res.GuestsChanged = j.guestNews(res.Batch.Tasks, at, listAt) // guestlist.go
	}
	res.Err = errors.Join(errs...)
	res.Duration = time.Since(start)
	return res
}

// nodeLeft reports whether a task is gone because its node left the
// cluster: the cluster no longer knows the node, and the cache has a
// cutoff for it, so it was one of the remote's nodes.
func (j *fetchJob) nodeLeft(g messages.GoneTask) bool {
	if g.Reason != proxmox.GoneNoNode {
		return false
	}
	_, known := j.snap.Cutoff(j.remote, nodeKey(j.kind, g.UPID))
	return known
}

// fetchNode fetches one node's tasks since its cutoff, pulling the cutoff
// back when it is ahead of the node's clock (the clock was stepped back,
// so tasks start with times below the cutoff). The node's last clock
// reading decides before the request; the answer's Date header decides
// again after it, and a step seen only then costs a second request.
func (j *fetchJob) fetchNode(ctx context.Context, n string, since, floor int64) (tasks []task.Task, reqs int, skipped []error, clock messages.NodeClock, hasTime bool, err error) {
	clock.Node = n
	from := since
	if pb, ok := j.pullBack(n, since, j.clocks[n], floor); ok {
		from, clock.Cutoff, clock.Since = pb, since, pb
	}
	r, err := j.client.FetchTasks(ctx, n, from)
	reqs = r.Requests
	if err == nil && clock.Since == 0 {
		if pb, ok := j.pullBack(n, since, r.Clock, floor); ok {
			from, clock.Cutoff, clock.Since = pb, since, pb
			r2, err2 := j.client.FetchTasks(ctx, n, from)
			reqs += r2.Requests
			r, err = r2, err2
		}
	}
	if !r.Clock.Remote.IsZero() {
		clock.Skew, hasTime = r.Clock.Skew(), true
	}
	return r.Tasks, reqs, r.Skipped, clock, hasTime, err
}

// pullBack returns where to fetch node n from when its cutoff since is
// ahead of the node's clock c: the node's time when it was last fetched
// completely (its clock now, less the time since then), or the retention
// floor when that is not known.
func (j *fetchJob) pullBack(n string, since int64, c proxmox.Clock, floor int64) (int64, bool) {
	now := time.Now()
	remoteNow, ok := c.Now(now)
	if !ok || since <= remoteNow.Add(clockTolerance).Unix() {
		return 0, false
	}
	from := floor
	if last, ok := j.lastOK[n]; ok {
		from = max(floor, remoteNow.Add(-now.Sub(last)-pullBackMargin).Unix())
	}
	return min(from, since), true
}

// remoteNow estimates the remote's time in Unix seconds from the clock
// readings of this fetch (the first node's, else the cluster list's), or
// ours without one.
func (j *fetchJob) remoteNow(clocks []messages.NodeClock) int64 {
	now := time.Now()
	if len(clocks) > 0 {
		return now.Add(clocks[0].Skew).Unix()
	}
	if t, ok := j.listClock.Now(now); ok {
		return t.Unix()
	}
	return now.Unix()
}

// checkStatuses asks the status of each task in j.check. It returns the
// tasks no longer running with their exit status, and records in res the
// tasks gone and the checks that failed.
func (j *fetchJob) checkStatuses(ctx context.Context, res *messages.FetchFinished) map[task.UPID]string {
	check := j.check
	if len(check) > MaxStatusChecks {
		check = check[:MaxStatusChecks]
	}
	var (
		mu       sync.Mutex
		finished = map[task.UPID]string{}
	)
	parallel(len(check), j.workers, func(i int) {
		j.stage(stageWorker)
		st, err := j.client.TaskStatus(ctx, check[i])
		mu.Lock()
		defer mu.Unlock()
		res.Requests++
		res.Checked++
		var gone *proxmox.TaskGoneError
		switch {
		case errors.As(err, &gone):
			res.Gone = append(res.Gone, messages.GoneTask{UPID: check[i], Reason: gone.Reason})
		case err != nil:
			res.CheckErrors = append(res.CheckErrors, fmt.Errorf("task status %s: %w", check[i], err))
		case !st.Running:
			finished[check[i]] = st.ExitStatus
		}
	})
	slices.SortFunc(res.Gone, func(a, b messages.GoneTask) int { return compareUPID(a.UPID, b.UPID) })
	return finished
}

func compareUPID(a, b task.UPID) int { return strings.Compare(a.String(), b.String()) }

// parallel runs f(0..n-1) on at most workers goroutines and waits for all.
// A panic in f does not escape its worker: the first one is re-raised in
// the caller once every worker has returned (its value a *workerPanic), so
// the caller's recover sees it.
func parallel(n, workers int, f func(i int)) {
	if n == 0 {
		return
	}
	workers = max(1, min(workers, n))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first *workerPanic
	)
	call := func(i int) {
		defer func() {
			if v := recover(); v != nil {
				mu.Lock()
				if first == nil {
					if wp, ok := v.(*workerPanic); ok {
						first = wp
					} else {
						first = &workerPanic{value: v, stack: debug.Stack()}
					}
				}
				mu.Unlock()
			}
		}()
		f(i)
	}
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				call(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		panic(first)
	}
}
