package actors

import (
	"slices"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/messages"
)

// TestRefreshForgetsLeftNodes: the per-node state of a poller (clocks,
// last complete fetch, cutoffs pulled back, failing nodes) holds only the
// nodes of the latest refresh; a node that left the cluster is dropped,
// also from the health's ClockBehind.
func TestRefreshForgetsLeftNodes(t *testing.T) {
	p := newPoller(&pollerDeps{remote: config.Remote{ID: "pve-a"}})().(*poller)
	now := time.Now().Unix()
	first := &messages.FetchFinished{
		Refresh: true,
		Nodes:   []string{"n1", "n2", "n3"},
		Clocks: []messages.NodeClock{
			{Node: "n1"},
			{Node: "n2", Cutoff: now + 3600, Since: now},
			{Node: "n3"},
		},
	}
	p.observeFetch(first)
	p.started = time.Now()
	p.applied(&messages.FetchFinished{Batch: messages.ApplyBatch{Nodes: []messages.NodeResult{{Node: "n1", OK: true}, {Node: "n2", OK: true}, {Node: "n3", OK: true}}}})
	p.failing["n3"] = true
	if len(p.clocks) != 3 || len(p.lastOK) != 3 || len(p.pulled) != 1 || !slices.Equal(p.health.ClockBehind, []string{"n2"}) {
		t.Fatalf("after the first refresh: clocks %v, lastOK %v, pulled %v, behind %v", p.clocks, p.lastOK, p.pulled, p.health.ClockBehind)
	}

	// n2 and n3 left the cluster.
	p.observeFetch(&messages.FetchFinished{Refresh: true, Nodes: []string{"n1"}, Clocks: []messages.NodeClock{{Node: "n1"}}})
	for name, keys := range map[string][]string{
		"clocks":  nodeKeys(p.clocks),
		"lastOK":  nodeKeys(p.lastOK),
		"pulled":  nodeKeys(p.pulled),
		"failing": nodeKeys(p.failing),
	} {
		for _, k := range keys {
			if k != "n1" {
				t.Errorf("%s still holds %s, which left the cluster", name, k)
			}
		}
	}
	if len(p.health.ClockBehind) != 0 {
		t.Errorf("ClockBehind %v, want none", p.health.ClockBehind)
	}
	if _, ok := p.clocks["n1"]; !ok {
		t.Error("the clock of n1, still in the cluster, was dropped")
	}

	// A poll that is not a refresh lists no nodes: nothing is dropped.
	p.observeFetch(&messages.FetchFinished{})
	if len(p.clocks) != 1 || len(p.lastOK) != 1 {
		t.Errorf("a poll without node list dropped state: clocks %v, lastOK %v", p.clocks, p.lastOK)
	}
}

func nodeKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
