package actors

import (
	"context"
	"errors"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// Change detection for PVE clusters.
//
// A refresh of a PVE cluster first asks one node for GET /cluster/tasks:
// every node's broadcast list of its running tasks, topped up with its most
// recently finished ones (newest finished first) to 25 entries, cut to
// 32 KiB (../shared/docs/proxmox-api.md). It then fetches the task list of
// only those nodes for which the answer cannot stand in; for the others it
// takes the new entries (tasks that started, tasks that ended) from the
// answer itself, as a complete fetch of the node. The answer stands in for
// a node when all of these hold:
//
//   - it has a cutoff (it was fetched completely before);
//   - every task the cache has running on it is listed (running, or
//     ended);
//   - at least one finished task it lists is known (the anchor): started
//     before the node's cutoff (the cutoff is held at the oldest running
//     task, so every task that started earlier and has finished was
//     fetched finished), or in the cache as finished. The list holds the
//     running tasks first, then the newest finished ones by end time, cut
//     from the end; so with an anchor shown, no running task was cut and
//     every task that ended after the anchor is listed, while every task
//     that ended before it was known at the fetch that saw the anchor
//     finished. Without an anchor the window may have overflowed (more
//     tasks finished since the last fetch than the list holds: a busy
//     node) or been cut, and the node is fetched;
//   - its clock is not behind its cutoff (by its last reading and by the
//     list's Date header, within clockTolerance): after a clock stepped
//     back, new tasks start before the cutoff and would pass for anchors,
//     so the node is fetched, with the cutoff pulled back (fetch.go);
//   - its last fetch did not fail: a failing node is listed until a fetch
//     succeeds, so that the remote's health shows it (degraded) instead
//     of going up and down with the full refreshes.
//
// The running-task check (every RunningCheckInterval) uses the same answer
// for the running tasks taskfleet does not track: one request per cluster
// instead of one status request per task.
//
// The whole refresh falls back to a full one (node list, every node) when
// the answer cannot be used: the request failed, an item was malformed, it
// names a node the poller does not know (a new member), or it shows
// nothing of a known node (offline, gone from the cluster, or without any
// task: the node list tells which, and the nodes the cluster lists offline
// are not asked). Every
// FullRefreshEvery-th refresh of a poller is full regardless, which also
// renews the node list: at the default 10-minute refresh interval, once an
// hour, at a phase that depends on the remote (so a fleet's full refreshes
// are spread). The first refresh after a poller starts is a full one.

// FullRefreshEvery is how often a refresh of a PVE cluster is a full one
// (node list and every node's task list) regardless of what
// /cluster/tasks shows: every FullRefreshEvery-th refresh of a poller.
const FullRefreshEvery = 6

// clusterTasker is the part of the client change detection needs
// (*proxmox.Client has it). While the client remembers a refusal of
// /cluster/tasks (403, 404 or 501, for proxmox.ClusterTasksRetryAfter),
// ClusterTasksPage fails at once with proxmox.ErrClusterTasksRefused,
// without a request: a refresh is then a full one and running tasks are
// checked by status requests.
type clusterTasker interface {
	ClusterTasksPage(ctx context.Context) (proxmox.ListPage, error)
}

// fullRefreshEvery is FullRefreshEvery; tests that compare refreshes of
// equal cost set it to 1 (every refresh full) before starting a System.
var fullRefreshEvery uint64 = FullRefreshEvery

// fullRefreshDue reports whether the n-th refresh of a remote's poller
// (counting from 1) is a full one: the first, and then every
// fullRefreshEvery-th, at a phase that depends on the remote, so that
// the full refreshes of a fleet are spread evenly over the refreshes, as
// the refreshes are over the interval (schedule.go).
func fullRefreshDue(remote string, n uint64) bool {
	if detectionOff.Load() || fullRefreshEvery <= 1 || n <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(remote))
	return (n+h.Sum64()%fullRefreshEvery)%fullRefreshEvery == 0
}

// clusterList asks /cluster/tasks once for the job when change
// detection or the running-task check can use it: a refresh of a PVE
// cluster that is not a full one, or running tasks to check that taskfleet
// does not track. Nil when not asked or when the answer cannot be used
// (failed, or an item was malformed). The request is counted in requests.
func (j *fetchJob) clusterList(ctx context.Context, requests *int) []task.Task {
	if j.kind != task.PVE || len(j.nodes) == 0 || detectionOff.Load() {
		return nil
	}
	ct, ok := j.client.(clusterTasker)
	if !ok {
		return nil
	}
	detect := j.refresh && !j.full
	untracked := false
	for _, u := range j.check {
		untracked = untracked || !j.tracked[u]
	}
	if !detect && !untracked {
		return nil
	}
	page, err := ct.ClusterTasksPage(ctx)
	if errors.Is(err, proxmox.ErrClusterTasksRefused) {
		return nil // a remembered refusal: no request was sent
	}
	*requests++
	if err != nil || len(page.Skipped) > 0 {
		return nil
	}
	j.listClock = page.Clock
	if page.Tasks == nil {
		page.Tasks = []task.Task{}
	}
	return page.Tasks
}

// detectChanges runs change detection with the cluster's list: it
// decides which nodes the list stands in for (their new tasks are taken
// from it, kept in j.fromList) and, on a refresh that is not a full one,
// returns the nodes that must be fetched and true. False means the refresh
// must be a full one (not a refresh, a full refresh due, no usable list).
func (j *fetchJob) detectChanges(listed []task.Task) (map[string]bool, bool) {
	if listed == nil {
		return nil, false
	}
	fetch, fromList, ok := changedNodes(j.remote, j.nodes, listed, j.snap, j.mustFetch)
	if !ok {
		return nil, false
	}
	j.fromList = fromList
	j.listState = make(map[task.UPID]bool, len(listed))
	for _, t := range listed {
		j.listState[t.UPID] = t.Running()
	}
	if !j.refresh || j.full {
		return nil, false
	}
	return fetch, true
}

// listShowsFinished reports whether the cluster list stands in for node
// and shows u finished: its final state is then in j.fromList, and the
// node need not be fetched for it.
func (j *fetchJob) listShowsFinished(node string, u task.UPID) bool {
	_, standIn := j.fromList[node]
	running, shown := j.listState[u]
	return standIn && shown && !running
}

// mustFetch reports whether node n must be fetched whatever the cluster
// list shows: its last fetch failed, or its clock is behind its cutoff.
func (j *fetchJob) mustFetch(n string, cutoff int64) bool {
	return j.failing[n] || j.clockBehind(n, cutoff)
}

// clockBehind reports whether node n's clock is behind its cutoff by
// more than clockTolerance, by the node's last reading or by the cluster
// list's Date header.
func (j *fetchJob) clockBehind(n string, cutoff int64) bool {
	now := time.Now()
	for _, c := range []proxmox.Clock{j.clocks[n], j.listClock} {
		if t, ok := c.Now(now); ok && cutoff > t.Add(clockTolerance).Unix() {
			return true
		}
	}
	return false
}

// addFromList adds the new tasks of the nodes the cluster list stands in
// for to the batch, as complete fetches of those nodes, except for nodes
// fetched anyway (in since); they are marked in inBatch.
func (j *fetchJob) addFromList(res *messages.FetchFinished, since map[string]int64, okNodes map[string]bool, inBatch map[task.UPID]bool) {
	for _, n := range slices.Sorted(maps.Keys(j.fromList)) {
		ts := j.fromList[n]
		if _, fetched := since[n]; fetched || len(ts) == 0 {
			continue
		}
		res.Batch.Tasks = append(res.Batch.Tasks, ts...)
		for _, t := range ts {
			inBatch[t.UPID] = true
		}
		res.Batch.Nodes = append(res.Batch.Nodes, messages.NodeResult{Node: n, OK: true})
		okNodes[n] = true
	}
}

// settleFromList answers the running-task check from the cluster's list
// for the tasks taskfleet does not track (those it tracks keep their
// status request: its answer is exact at once): a task the list shows
// finished has finished, one it shows running still runs. Those are
// removed from j.check; a task the list does not show (its node absent,
// or cut from the list) keeps its status request. It returns the
// finished ones with the status the list shows.
func (j *fetchJob) settleFromList(listed []task.Task) map[task.UPID]string {
	if listed == nil || len(j.check) == 0 {
		return nil
	}
	shown := make(map[task.UPID]task.Task, len(listed))
	for _, t := range listed {
		shown[t.UPID] = t
	}
	finished := map[task.UPID]string{}
	rest := j.check[:0:0]
	for _, u := range j.check {
		t, ok := shown[u]
		switch {
		case j.tracked[u] || !ok:
			rest = append(rest, u)
		case !t.Running():
			finished[u] = t.Status
		}
	}
	j.check = rest
	return finished
}

// changedNodes decides, from the cluster's task list and the cache, which
// nodes must be fetched and, for the others, which of their tasks to take
// from the list (see the rules above; a node with nothing new has an
// empty entry); false when the list names a node not in nodes or shows
// nothing of one. mustFetch reports whether a node with that cutoff must be
// fetched whatever the list shows.
func changedNodes(remote string, nodes []string, listed []task.Task, snap *cache.Snapshot, mustFetch func(node string, cutoff int64) bool) (fetch map[string]bool, fromList map[string][]task.Task, ok bool) {
	perNode := make(map[string][]task.Task, len(nodes))
	for _, n := range nodes {
		perNode[n] = nil
	}
	for _, t := range listed {
		if _, ok := perNode[t.UPID.Node]; !ok {
			return nil, nil, false
		}
		perNode[t.UPID.Node] = append(perNode[t.UPID.Node], t)
	}
	for _, ts := range perNode {
		if len(ts) == 0 {
			return nil, nil, false
		}
	}
	running := map[string]map[task.UPID]bool{}
	for _, t := range snap.Running(remote) {
		n := t.UPID.Node
		if running[n] == nil {
			running[n] = map[task.UPID]bool{}
		}
		running[n][t.UPID] = true
	}
	fetch, fromList = map[string]bool{}, map[string][]task.Task{}
	for _, n := range nodes {
		if add, ok := standIn(remote, n, perNode[n], running[n], snap, mustFetch); ok {
			fromList[n] = add
		} else {
			fetch[n] = true
		}
	}
	return fetch, fromList, true
}

// standIn reports whether the node's entries of the cluster list can stand
// in for a fetch of its task list, and returns the entries that are new
// to the cache (tasks that started, tasks that ended).
func standIn(remote, node string, listed []task.Task, running map[task.UPID]bool, snap *cache.Snapshot, mustFetch func(string, int64) bool) ([]task.Task, bool) {
	cutoff, ok := snap.Cutoff(remote, node)
	if !ok || mustFetch(node, cutoff) {
		return nil, false
	}
	var add []task.Task
	anchor := false
	seen := 0 // known running tasks the list shows, running or ended
	for _, t := range listed {
		switch {
		case running[t.UPID]:
			seen++
			if !t.Running() {
				add = append(add, t) // ended since the last fetch
			}
		case t.Running():
			add = append(add, t) // started since the last fetch
		case t.UPID.StartTime < cutoff || snap.Finished(remote, t.UPID):
			anchor = true
		default:
			add = append(add, t) // finished, not in the cache
		}
	}
	return add, anchor && seen == len(running)
}
