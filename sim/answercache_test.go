package sim

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestAnswersKeptUntilSomethingChanges checks that a repeated task list and
// /cluster/tasks give the same bytes while nothing happens on the nodes,
// and that a task starting or ending shows at once.
func TestAnswersKeptUntilSomethingChanges(t *testing.T) {
	runInBubble(t, Config{Seed: 40, PVEClusters: 1, History: 24 * time.Hour, TaskRate: 0.01}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote, node = "pve-c001", "pve-c001-n1"
		path := "/api2/json/nodes/" + node + "/tasks?source=all&limit=5000"
		first, firstCluster := c.get(remote, node, path).body, c.get(remote, node, "/api2/json/cluster/tasks").body
		time.Sleep(time.Second)
		if again := c.get(remote, node, path).body; !bytes.Equal(first, again) {
			t.Fatalf("list changed while nothing happened")
		}
		if again := c.get(remote, "pve-c001-n2", "/api2/json/cluster/tasks").body; !bytes.Equal(firstCluster, again) {
			t.Fatalf("cluster tasks changed while nothing happened")
		}
		upid := f.StartTask(remote, node, "qmstart", "100", 10*time.Second).String()
		contains := func(body []byte, running bool) bool {
			var env struct{ Data []item }
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatal(err)
			}
			for _, it := range env.Data {
				if it.UPID == upid {
					return running == (it.EndTime == 0)
				}
			}
			return false
		}
		if !contains(c.get(remote, node, path).body, true) || !contains(c.get(remote, node, "/api2/json/cluster/tasks").body, true) {
			t.Fatalf("the started task is not listed as running")
		}
		time.Sleep(11 * time.Second)
		if !contains(c.get(remote, node, path).body, false) || !contains(c.get(remote, node, "/api2/json/cluster/tasks").body, false) {
			t.Fatalf("the task is not listed as finished after it ended")
		}
	})
}

// TestClusterTasksSizeCap: a node with many running tasks broadcasts
// only what fits in 32 KiB of JSON, running tasks first.
func TestClusterTasksSizeCap(t *testing.T) {
	runInBubble(t, Config{Seed: 41, PVEClusters: 1, NodesPerCluster: 1, History: time.Hour, TaskRate: 0.01}, func(t *testing.T, f *Fleet, c *testClient) {
		for i := range 300 {
			f.StartTask("pve-c001", "pve-c001-n1", "vzdump", "", time.Hour+time.Duration(i)*time.Second)
		}
		env := c.getOK("pve-c001", "", "/api2/json/cluster/tasks")
		var items []item
		json.Unmarshal(env.Data, &items)
		if len(env.Data) >= clusterTasksMaxBytes || len(items) < 100 || len(items) >= 300 {
			t.Fatalf("%d items in %d bytes: want the list cut below %d bytes", len(items), len(env.Data), clusterTasksMaxBytes)
		}
		for _, it := range items {
			if it.EndTime != 0 {
				t.Fatalf("a finished task %s is listed while running ones were cut", it.UPID)
			}
		}
	})
}
