package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// maxStatusChecks bounds the status requests of one running-task check; the
// rest wait for the next check or are caught by the next refresh.
const maxStatusChecks = 50

// fetchJob is one poll of a remote, run in its own goroutine. It only reads
// its fields and the immutable snapshot, and returns its result as a
// message: it shares no mutable state with the poller.
type fetchJob struct {
	remote    string
	kind      task.Kind
	gen       uint64
	refresh   bool        // renew the node list and fetch every node since its cutoff
	full      bool        // a full refresh, no change detection (detect.go)
	nodes     []string    // cached node list (used when not refreshing)
	check     []task.UPID // tracked and running tasks whose status to check
	tracked   map[task.UPID]bool
	snap      *cache.Snapshot
	retention time.Duration
	workers   int // parallel requests (the client caps them as well)
	client    remoteClient

	// Change detection's view of the cluster list (detect.go).
	fromList  map[string][]task.Task // nodes the list stands in for: their new tasks
	listState map[task.UPID]bool     // the listed tasks: running?
}

// nodeKey is the node a task is listed under: PBS lists every task under
// "localhost", whatever host name its UPID carries.
func nodeKey(k task.Kind, u task.UPID) string {
	if k == task.PBS {
		return "localhost"
	}
	return u.Node
}

func (j *fetchJob) run(ctx context.Context) *messages.FetchFinished {
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
			res.Err, res.Duration = fmt.Errorf("list nodes: %w", err), time.Since(start)
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

	// Status checks: which tracked or running tasks have finished?
	finished := append(j.settleFromList(listed), j.checkStatuses(ctx, &res.Requests, &errs)...)

	// Nodes to fetch: all on a refresh, else those where a task finished.
	since := map[string]int64{}
	complete := map[string]bool{}
	floor := time.Now().Add(-j.retention).Unix()
	for _, u := range finished {
		n := nodeKey(j.kind, u)
		if j.listShowsFinished(n, u) { // detect.go
			continue
		}
		if s, ok := since[n]; !ok || u.StartTime < s {
			since[n] = u.StartTime
		}
	}
	if j.refresh {
		for _, n := range nodes {
			if detected && !changed[n] {
				continue
			}
			if _, ok := since[n]; !ok {
				since[n] = floor
			}
			complete[n] = true
		}
	}
	for n := range since {
		if c, ok := j.snap.Cutoff(j.remote, n); ok {
			// From the cutoff the fetch covers the node's whole window.
			since[n], complete[n] = c, true
		} else if complete[n] {
			since[n] = floor
		}
	}

	type nodeFetch struct {
		node    string
		tasks   []task.Task
		reqs    int
		skipped []error
		err     error
	}
	var (
		mu      sync.Mutex
		fetched []nodeFetch
		order   = slices.Sorted(maps.Keys(since))
	)
	parallel(len(order), j.workers, func(i int) {
		n := order[i]
		f := nodeFetch{node: n}
		if offline[n] {
			f.err = fmt.Errorf("node %s is offline", n)
		} else {
			r, err := j.client.FetchTasks(ctx, n, since[n])
			f.tasks, f.reqs, f.skipped, f.err = r.Tasks, r.Requests, r.Skipped, err
		}
		mu.Lock()
		fetched = append(fetched, f)
		mu.Unlock()
	})
	slices.SortFunc(fetched, func(a, b nodeFetch) int { return strings.Compare(a.node, b.node) })
	okNodes := map[string]bool{}
	for _, f := range fetched {
		res.Requests += f.reqs
		res.Skipped = append(res.Skipped, f.skipped...)
		res.Batch.Tasks = append(res.Batch.Tasks, f.tasks...)
		res.Batch.Nodes = append(res.Batch.Nodes, messages.NodeResult{Node: f.node, OK: f.err == nil && complete[f.node]})
		if f.err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", f.node, f.err))
		} else {
			okNodes[f.node] = true
		}
	}
	j.addFromList(res, since, okNodes) // detect.go
	// A finished tracked task is dropped from tracking once its node was
	// fetched: its final state is in this batch (or no longer retrievable).
	for _, u := range finished {
		if j.tracked[u] && okNodes[nodeKey(j.kind, u)] {
			res.Batch.Untrack = append(res.Batch.Untrack, u)
		}
	}
	res.Err = errors.Join(errs...)
	res.Duration = time.Since(start)
	return res
}

// checkStatuses asks the status of each task in j.check and returns those
// that are no longer running.
func (j *fetchJob) checkStatuses(ctx context.Context, requests *int, errs *[]error) []task.UPID {
	check := j.check
	if len(check) > maxStatusChecks {
		check = check[:maxStatusChecks]
	}
	var (
		mu       sync.Mutex
		finished []task.UPID
	)
	parallel(len(check), j.workers, func(i int) {
		st, err := j.client.TaskStatus(ctx, check[i])
		mu.Lock()
		defer mu.Unlock()
		*requests++
		switch {
		case err != nil:
			*errs = append(*errs, fmt.Errorf("task status %s: %w", check[i], err))
		case !st.Running:
			finished = append(finished, check[i])
		}
	})
	slices.SortFunc(finished, func(a, b task.UPID) int { return strings.Compare(a.String(), b.String()) })
	return finished
}

// parallel runs f(0..n-1) on at most workers goroutines and waits for all.
func parallel(n, workers int, f func(i int)) {
	if n == 0 {
		return
	}
	workers = max(1, min(workers, n))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
