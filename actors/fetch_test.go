package actors

import (
	"context"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// fakeClient answers a fetchJob from fixed data.
type fakeClient struct {
	nodes  []proxmox.Node
	tasks  map[string][]task.Task // by node
	clock  proxmox.Clock
	status map[task.UPID]error
	since  map[string][]int64 // since of each FetchTasks, by node
}

func (f *fakeClient) Nodes(context.Context) ([]proxmox.Node, error) { return f.nodes, nil }

func (f *fakeClient) FetchTasks(_ context.Context, node string, since int64) (proxmox.FetchResult, error) {
	if f.since == nil {
		f.since = map[string][]int64{}
	}
	f.since[node] = append(f.since[node], since)
	var out []task.Task
	for _, t := range f.tasks[node] {
		if t.UPID.StartTime >= since {
			out = append(out, t)
		}
	}
	return proxmox.FetchResult{Tasks: out, Requests: 1, Clock: f.clock}, nil
}

func (f *fakeClient) TaskStatus(_ context.Context, u task.UPID) (proxmox.TaskStatus, error) {
	return proxmox.TaskStatus{UPID: u}, f.status[u]
}

func (f *fakeClient) Stats() proxmox.Stats { return proxmox.Stats{} }
func (f *fakeClient) Close()               {}

func emptySnapshot(t *testing.T) *cache.Snapshot {
	t.Helper()
	latest := &cache.Latest{}
	w, err := cache.Open(cache.Options{Dir: t.TempDir(), Latest: latest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return latest.Load()
}

// TestOfflineNodeIsNodeOffline: a node the cluster lists offline is a
// node_offline error, as docs/api.md says, not "other".
func TestOfflineNodeIsNodeOffline(t *testing.T) {
	cl := &fakeClient{nodes: []proxmox.Node{{Name: "n1", Online: true}, {Name: "n2"}}}
	j := &fetchJob{remote: "r", kind: task.PVE, refresh: true, snap: emptySnapshot(t), retention: time.Hour, workers: 2, client: cl}
	res := j.run(context.Background())
	if kind := proxmox.ErrorKind(res.Err); kind != "node_offline" {
		t.Errorf("error %v: kind %q, want node_offline", res.Err, kind)
	}
	if len(res.Batch.Nodes) != 2 || !res.Batch.Nodes[0].OK || res.Batch.Nodes[1].OK {
		t.Errorf("node results %+v", res.Batch.Nodes)
	}
}

// TestGoneTasks: a status answer that says the task or node is gone
// settles a running task as unknown and drops a tracked one; a failed
// status check is reported apart, not as an error of the lists.
func TestGoneTasks(t *testing.T) {
	now := time.Now().Unix()
	mk := func(node string, pid uint32) task.UPID {
		return task.UPID{Kind: task.PVE, Node: node, PID: pid, PStart: 1, StartTime: now - 60, Type: "qmstart", ID: "100", User: "root@pam"}
	}
	running, tracked, failing := mk("gone", 1), mk("n1", 2), mk("n1", 3)
	cl := &fakeClient{
		nodes: []proxmox.Node{{Name: "n1", Online: true}},
		status: map[task.UPID]error{
			running: &proxmox.TaskGoneError{UPID: running, Reason: proxmox.GoneNoNode},
			tracked: &proxmox.TaskGoneError{UPID: tracked, Reason: proxmox.GoneNoTask},
			failing: &proxmox.TimeoutError{Remote: "r", Phase: "request"},
		},
	}
	j := &fetchJob{remote: "r", kind: task.PVE, nodes: []string{"n1"}, check: []task.UPID{running, tracked, failing},
		tracked: map[task.UPID]bool{tracked: true}, snap: emptySnapshot(t), retention: time.Hour, workers: 3, client: cl}
	res := j.run(context.Background())
	if res.Err != nil || len(res.CheckErrors) != 1 || res.Checked != 3 {
		t.Errorf("err %v, check errors %v, checked %d", res.Err, res.CheckErrors, res.Checked)
	}
	if len(res.Batch.Untrack) != 1 || res.Batch.Untrack[0] != tracked {
		t.Errorf("untrack %v, want %s", res.Batch.Untrack, tracked)
	}
	if len(res.Batch.Tasks) != 1 || res.Batch.Tasks[0].UPID != running || res.Batch.Tasks[0].Status != settleStatus || res.Batch.Tasks[0].EndTime < running.StartTime {
		t.Errorf("settled %+v, want %s %s", res.Batch.Tasks, running, settleStatus)
	}
}

// TestPullBack: a cutoff ahead of the node's clock is pulled back to the
// node's time at its last complete fetch (or the retention floor), seen in
// the last reading or, failing that, in the answer's Date header.
func TestPullBack(t *testing.T) {
	now := time.Now()
	behind := proxmox.Clock{Remote: now.Add(-2 * time.Hour), Local: now}
	j := &fetchJob{lastOK: map[string]time.Time{"n1": now.Add(-10 * time.Minute)}}
	floor := now.Add(-24 * time.Hour).Unix()
	cutoff := now.Unix()
	if from, ok := j.pullBack("n1", cutoff, behind, floor); !ok || from > now.Add(-2*time.Hour-10*time.Minute).Unix() || from < now.Add(-2*time.Hour-12*time.Minute).Unix() {
		t.Errorf("pull back n1: %d %v", from-cutoff, ok)
	}
	if from, ok := j.pullBack("n2", cutoff, behind, floor); !ok || from != floor {
		t.Errorf("pull back n2 (never fetched): %d, want the floor", from)
	}
	if _, ok := j.pullBack("n1", cutoff, proxmox.Clock{Remote: now, Local: now}, floor); ok {
		t.Error("pulled back a cutoff that is not ahead")
	}
	if _, ok := j.pullBack("n1", cutoff, proxmox.Clock{}, floor); ok {
		t.Error("pulled back without a clock reading")
	}

	// Seen only in the answer: a second request from the node's time.
	old := task.Task{Remote: "r", UPID: task.UPID{Kind: task.PVE, Node: "n1", PID: 9, PStart: 1, StartTime: now.Add(-2*time.Hour - time.Minute).Unix(), Type: "qmstart", User: "root@pam"}, EndTime: now.Unix(), Status: "OK"}
	cl := &fakeClient{clock: behind, tasks: map[string][]task.Task{"n1": {old}}}
	j.client = cl
	tasks, reqs, _, clock, _, err := j.fetchNode(context.Background(), "n1", cutoff, floor)
	if err != nil || reqs != 2 || len(tasks) != 1 || clock.Cutoff != cutoff || clock.Since == 0 || len(cl.since["n1"]) != 2 {
		t.Errorf("fetch: %d tasks, %d requests, clock %+v, since %v, err %v", len(tasks), reqs, clock, cl.since, err)
	}
}

// TestWorkerPanicReachesCaller: parallel re-raises a worker's panic in
// its caller once every worker returned.
func TestWorkerPanicReachesCaller(t *testing.T) {
	defer func() {
		v := recover()
		wp, ok := v.(*workerPanic)
		if !ok || wp.value != "boom" || len(wp.stack) == 0 {
			t.Errorf("recovered %v", v)
		}
	}()
	parallel(10, 3, func(i int) {
		if i == 7 {
			panic("boom")
		}
	})
	t.Error("parallel returned")
}
