package sim

import (
	"fmt"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// NodeLeaves takes a node out of its PVE cluster while tasks run on it, as
// `pvecm delnode` after a node died: it starts a task of duration d on the
// node first (so that at least one runs), removes the node and returns
// the UPIDs of the tasks that were running on it. Those tasks never
// finish anywhere a client can see: the cluster answers their status with
// "hostname lookup failed", and no list holds them; a client must settle
// them itself. In the ground truth they stay as they were at removal.
func (f *Fleet) NodeLeaves(remoteID, nodeName string, d time.Duration) ([]task.UPID, error) {
	if u := f.StartTask(remoteID, nodeName, "qmstart", "100", d); u == (task.UPID{}) {
		return nil, fmt.Errorf("node leaves: remote %q has no node %q that can start a task", remoteID, nodeName)
	}
	_, n := f.lookup(remoteID, nodeName)
	if n == nil {
		return nil, fmt.Errorf("node leaves: remote %q has no node %q", remoteID, nodeName)
	}
	a := n.act
	a.mu.Lock()
	a.advance(f.now())
	running := make([]task.UPID, 0, len(a.running))
	for i := range a.running {
		running = append(running, a.upid(&a.running[i]))
	}
	a.mu.Unlock()
	if err := f.RemoveNode(remoteID, nodeName); err != nil {
		return nil, fmt.Errorf("node leaves: %w", err)
	}
	return running, nil
}
