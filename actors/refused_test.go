package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// refusingClient is a PVE remote that refuses /cluster/tasks (403) and,
// like *proxmox.Client, remembers the refusal: then it fails with
// proxmox.ErrClusterTasksRefused without asking.
type refusingClient struct {
	fakeClient
	asked   int
	refused bool
}

func (r *refusingClient) ClusterTasksPage(context.Context) (proxmox.ListPage, error) {
	if r.refused {
		return proxmox.ListPage{}, fmt.Errorf("cluster tasks: r: %w", proxmox.ErrClusterTasksRefused)
	}
	r.asked++
	r.refused = true
	return proxmox.ListPage{}, &proxmox.AuthError{Remote: "r", StatusCode: 403, Message: "Permission check failed"}
}

// TestClusterTasksRefusedNotAskedAgain: once a remote refused
// /cluster/tasks, the following refreshes go straight to the node list
// and the task lists (no failed request first), and running tasks are
// checked by status requests.
func TestClusterTasksRefusedNotAskedAgain(t *testing.T) {
	running := task.UPID{Kind: task.PVE, Node: "n1", PID: 7, PStart: 1, StartTime: time.Now().Unix() - 60, Type: "vzdump", User: "root@pam"}
	cl := &refusingClient{fakeClient: fakeClient{nodes: []proxmox.Node{{Name: "n1", Online: true}}}}
	snap := emptySnapshot(t)
	run := func() int {
		j := &fetchJob{remote: "r", kind: task.PVE, refresh: true, nodes: []string{"n1"}, check: []task.UPID{running},
			snap: snap, retention: time.Hour, workers: 2, client: cl}
		res := j.run(context.Background())
		if res.Err != nil {
			t.Fatalf("refresh: %v", res.Err)
		}
		return res.Requests
	}
	if n := run(); cl.asked != 1 || n != 4 {
		t.Fatalf("first refresh: /cluster/tasks asked %d times, %d requests; want 1 and 4 (cluster tasks, nodes, n1, status)", cl.asked, n)
	}
	for i := range 3 {
		if n := run(); cl.asked != 1 || n != 3 {
			t.Fatalf("refresh %d after the refusal: /cluster/tasks asked %d times, %d requests; want 1 and 3 (nodes, n1, status)", i+2, cl.asked, n)
		}
	}
}
