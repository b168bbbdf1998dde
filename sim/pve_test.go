package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// heldOn returns the held tasks of one node.
func heldOn(f *Fleet, remote, node string) map[string]task.Task {
	out := map[string]task.Task{}
	for _, tk := range f.Held(remote) {
		if tk.UPID.Node == node {
			out[tk.UPID.String()] = tk
		}
	}
	return out
}

func TestPVEListOrderAndPaging(t *testing.T) {
	runInBubble(t, Config{Seed: 2, PVEClusters: 1}, func(t *testing.T, f *Fleet, c *testClient) {
		time.Sleep(90 * time.Minute) // 01:30: the nightly backup runs
		const remote, node = "pve-c001", "pve-c001-n1"
		f.StartTask(remote, node, "qmigrate", "120", time.Hour)
		time.Sleep(10 * time.Second)
		f.StartTask(remote, node, "vncproxy", "121", time.Hour)
		all, total := c.list(remote, node, q("source", "all", "limit", "5000"))
		held := heldOn(f, remote, node)
		if len(all) != total || total != len(held) {
			t.Fatalf("source=all returned %d items, total %d; the node holds %d", len(all), total, len(held))
		}
		running, finished := 0, 0
		lastEnd := int64(math.MaxInt64)
		lastRunningStart := int64(math.MaxInt64)
		startOrder := true
		var prevStart int64 = math.MaxInt64
		for i, it := range all {
			want, ok := held[it.UPID]
			if !ok {
				t.Fatalf("item %d %s is not held by the node", i, it.UPID)
			}
			if got := it.toTask(t, remote); got != want {
				t.Fatalf("item %d = %+v, held task %+v", i, got, want)
			}
			if it.EndTime == 0 {
				if finished > 0 {
					t.Fatalf("running task %s listed after %d finished ones", it.UPID, finished)
				}
				if it.Status != "RUNNING" || it.Saved != "0" {
					t.Fatalf("running item has status %q saved %q, want RUNNING and \"0\"", it.Status, it.Saved)
				}
				if it.StartTime > lastRunningStart {
					t.Fatalf("running tasks not newest first")
				}
				lastRunningStart = it.StartTime
				running++
				continue
			}
			finished++
			if it.EndTime > lastEnd {
				t.Fatalf("item %d ended at %d after item %d ended at %d: want newest finished first", i, it.EndTime, i-1, lastEnd)
			}
			lastEnd = it.EndTime
			if it.StartTime > prevStart {
				startOrder = false
			}
			prevStart = it.StartTime
		}
		if running < 2 || finished < 1000 {
			t.Fatalf("%d running, %d finished: the test needs both", running, finished)
		}
		if startOrder {
			t.Error("finished tasks are in start order too; the finish order is not exercised")
		}

		// Paging with small pages gives the same list.
		paged := c.fetchAll(remote, node, 7, "")
		if len(paged) != len(all) {
			t.Fatalf("paging by 7 gave %d items, want %d", len(paged), len(all))
		}
		for i := range all {
			if paged[i].UPID != all[i].UPID {
				t.Fatalf("paged item %d = %s, want %s", i, paged[i].UPID, all[i].UPID)
			}
		}
		if _, tot := c.list(remote, node, q("source", "all", "start", "100", "limit", "10")); tot != total {
			t.Fatalf("total of a later page = %d, want %d (all matching)", tot, total)
		}
		// limit=0 returns nothing on PVE, but counts.
		if items, tot := c.list(remote, node, q("source", "all", "limit", "0")); len(items) != 0 || tot != total {
			t.Fatalf("limit=0 returned %d items, total %d; want none, %d", len(items), tot, total)
		}
		// The defaults: source=archive, limit 50.
		items, tot := c.list(remote, node, "")
		if len(items) != 50 || tot != finished || items[0].EndTime == 0 {
			t.Fatalf("defaults returned %d items (total %d, first running %v), want 50 finished of %d", len(items), tot, items[0].EndTime == 0, finished)
		}
		if items, tot := c.list(remote, node, q("source", "active")); tot != running || len(items) != running {
			t.Fatalf("source=active returned %d (total %d), want the %d running", len(items), tot, running)
		}
		// A start beyond the end is an empty page.
		if items, _ := c.list(remote, node, q("source", "all", "start", strconv.Itoa(total+5))); len(items) != 0 {
			t.Fatalf("start past the end returned %d items", len(items))
		}
	})
}

func TestPVESinceAndUntilAreInclusive(t *testing.T) {
	runInBubble(t, Config{Seed: 4, PVEClusters: 1, NodesPerCluster: 1}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote, node = "pve-c001", "pve-c001-n1"
		time.Sleep(10 * time.Hour)
		// Two tasks started in the same second: the cutoff second.
		a := f.StartTask(remote, node, "qmstart", "101", 30*time.Second)
		b := f.StartTask(remote, node, "qmstop", "102", 10*time.Second)
		sec := a.StartTime
		time.Sleep(time.Minute)
		items, total := c.list(remote, node, q("source", "all", "since", strconv.FormatInt(sec, 10), "limit", "500"))
		got := map[string]bool{}
		for _, it := range items {
			if it.StartTime < sec {
				t.Fatalf("since=%d returned a task started at %d", sec, it.StartTime)
			}
			got[it.UPID] = true
		}
		if !got[a.String()] || !got[b.String()] {
			t.Fatalf("since=%d (inclusive) misses the tasks started at that second: %v %v", sec, got[a.String()], got[b.String()])
		}
		want := 0
		for _, tk := range heldOn(f, remote, node) {
			if tk.UPID.StartTime >= sec {
				want++
			}
		}
		if total != want || len(items) != want {
			t.Fatalf("since returned %d (total %d), want %d", len(items), total, want)
		}
		items, _ = c.list(remote, node, q("source", "all", "since", strconv.FormatInt(sec+1, 10), "limit", "500"))
		for _, it := range items {
			if it.UPID == a.String() || it.UPID == b.String() {
				t.Fatalf("since=%d returned %s started at %d", sec+1, it.UPID, it.StartTime)
			}
		}
		items, _ = c.list(remote, node, q("source", "all", "until", strconv.FormatInt(sec, 10), "since", strconv.FormatInt(sec, 10)))
		if len(items) < 2 {
			t.Fatalf("since=until=%d returned %d items, want at least the 2 started then", sec, len(items))
		}
	})
}

func TestPVEFilters(t *testing.T) {
	runInBubble(t, Config{Seed: 6, PVEClusters: 1, NodesPerCluster: 1, History: 3 * 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote, node = "pve-c001", "pve-c001-n1"
		time.Sleep(14 * time.Hour)
		f.StartTask(remote, node, "qmstart", "150", time.Hour) // a running token task
		all, _ := c.list(remote, node, q("source", "all", "limit", "5000"))
		count := func(pred func(it item) bool) int {
			n := 0
			for _, it := range all {
				if pred(it) {
					n++
				}
			}
			return n
		}
		check := func(name, query string, pred func(it item) bool) {
			t.Helper()
			items, total := c.list(remote, node, query+"&source=all&limit=5000")
			want := count(pred)
			if total != want || len(items) != want {
				t.Errorf("%s: %d items (total %d), want %d", name, len(items), total, want)
			}
			for _, it := range items {
				if !pred(it) {
					t.Errorf("%s: item %s does not match", name, it.UPID)
					return
				}
			}
		}
		check("typefilter is exact", q("typefilter", "qmstart"), func(it item) bool { return it.Type == "qmstart" })
		check("typefilter prefix matches nothing", q("typefilter", "qm"), func(it item) bool { return false })
		check("userfilter is a case-insensitive substring", q("userfilter", "ROOT@P"), func(it item) bool { return strings.HasPrefix(it.User, "root@pam") })
		// Archived token tasks list only user@realm: a token name matches
		// only running tasks, which keep the full user.
		check("userfilter sees the token only on running tasks", q("userfilter", "!poll"), func(it item) bool { return it.EndTime == 0 && strings.HasSuffix(it.User, "!poll") })
		vmid := ""
		for _, it := range all {
			if it.Type == "qmstart" {
				vmid = *it.ID
				break
			}
		}
		check("vmid", q("vmid", vmid), func(it item) bool { return *it.ID == vmid })
		// Running tasks classify as unknown (their status is filled in
		// after filtering), so errors=1 keeps them.
		check("errors drops only OK", q("errors", "1"), func(it item) bool { return it.Status != "OK" })
		check("statusfilter warning", q("statusfilter", "warning"), func(it item) bool { return strings.HasPrefix(it.Status, "WARNINGS: ") })
		check("statusfilter list", q("statusfilter", "OK,Warning"), func(it item) bool { return it.Status == "OK" || strings.HasPrefix(it.Status, "WARNINGS: ") })
		check("statusfilter NUL-joined repeats", "statusfilter=ok&statusfilter=unknown", func(it item) bool {
			return it.Status == "OK" || it.Status == "RUNNING" || it.Status == "unexpected status"
		})
		check("errors wins over statusfilter", q("errors", "1", "statusfilter", "ok"), func(it item) bool { return it.Status != "OK" })

		if count(func(it item) bool { return it.TokenID != "" }) == 0 {
			t.Error("no archived token task (user split off into tokenid)")
		}
		for _, it := range all {
			if it.TokenID != "" && strings.Contains(it.User, "!") {
				t.Errorf("archived token task %s: user %q should be user@realm only", it.UPID, it.User)
			}
			if it.EndTime == 0 && it.TokenID != "" {
				t.Errorf("running task %s has tokenid %q; active entries keep the full user", it.UPID, it.TokenID)
			}
		}

		// Invalid parameters are refused like PVE does.
		for _, bad := range []string{"limit=-1", "limit=abc", "start=x", "source=mine", "errors=maybe", "vmid=99", "statusfilter=bad", "foo=1", "limit=1&limit=2"} {
			r := c.get(remote, node, "/api2/json/nodes/"+node+"/tasks?"+bad)
			var body struct {
				Data   any               `json:"data"`
				Errors map[string]string `json:"errors"`
			}
			if r.status != http.StatusBadRequest || r.reason != "Parameter verification failed." || json.Unmarshal(r.body, &body) != nil || len(body.Errors) != 1 || body.Data != nil {
				t.Errorf("?%s = %d %q %s, want 400 Parameter verification failed. with one error", bad, r.status, r.reason, r.body)
			}
		}
	})
}

func TestPVETaskStatus(t *testing.T) {
	runInBubble(t, Config{Seed: 8, PVEClusters: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote, node = "pve-c001", "pve-c001-n2"
		u := f.StartTask(remote, node, "vzcreate", "123", 2*time.Minute)
		status := func(via, n string, upid string) (*response, pveTaskStatus) {
			r := c.get(remote, via, "/api2/json/nodes/"+n+"/tasks/"+escapeUPID(upid)+"/status")
			var env struct{ Data pveTaskStatus }
			if r.status == http.StatusOK {
				if err := json.Unmarshal(r.body, &env); err != nil {
					t.Fatalf("decode %s: %v", r.body, err)
				}
			}
			return r, env.Data
		}
		r, st := status(node, node, u.String())
		if r.status != http.StatusOK || st.Status != "running" || st.ExitStatus != "" || st.User != "taskfleet@pve" || st.TokenID != "poll" || st.Type != "vzcreate" || st.ID != "123" {
			t.Fatalf("status of a running task = %d %+v", r.status, st)
		}
		if strings.Contains(string(r.body), "endtime") {
			t.Fatalf("status has an endtime: %s", r.body)
		}
		time.Sleep(2 * time.Minute)
		// Asked through another node: proxied.
		if r, st = status("pve-c001-n1", node, u.String()); r.status != http.StatusOK || st.Status != "stopped" || st.ExitStatus != "OK" {
			t.Fatalf("status after 2 minutes via another node = %d %+v, want stopped OK", r.status, st)
		}
		// A generated task long gone from the index still has its log.
		old := f.Truth(remote)
		last := old[len(old)-1]
		if r, st = status(last.UPID.Node, last.UPID.Node, last.UPID.String()); r.status != http.StatusOK || st.ExitStatus != last.Status {
			t.Fatalf("status of the oldest task = %d %+v, want %q", r.status, st, last.Status)
		}
		for name, bad := range map[string]struct{ n, upid, msg string }{
			"garbage":     {node, "nonsense", "unable to parse worker upid"},
			"pbs upid":    {node, "UPID:pbs:000002B2:00000158:00000000:674D828C:logrotate::root@pam:", "unable to parse worker upid"},
			"unknown":     {node, strings.Replace(u.String(), ":vzcreate:", ":vzstart:", 1), "no such task"},
			"other node":  {"pve-c001-n1", u.String(), "no such task"},
			"lower case":  {node, strings.ToLower(u.String()[:5]) + u.String()[5:], "unable to parse worker upid"},
			"future task": {node, task.UPID{Kind: task.PVE, Node: node, PID: 5, PStart: 5, StartTime: u.StartTime + 3600, Type: "qmstart", User: "root@pam"}.String(), "no such task"},
		} {
			r, _ := status(node, bad.n, bad.upid)
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), bad.msg) || !r.close {
				t.Errorf("%s: status = %d %s (close %v), want 400 with %q and the connection closed", name, r.status, r.body, r.close, bad.msg)
			}
		}
	})
}

// escapeUPID escapes a UPID for a URL path (PBS UPIDs hold backslashes).
func escapeUPID(s string) string {
	return strings.NewReplacer(`\`, "%5C", "!", "%21").Replace(s)
}

func TestPVEClusterTasks(t *testing.T) {
	runInBubble(t, Config{Seed: 10, PVEClusters: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		time.Sleep(75 * time.Minute)
		env := c.getOK("pve-c001", "", "/api2/json/cluster/tasks")
		var items []item
		json.Unmarshal(env.Data, &items)
		perNode := map[string][]item{}
		for _, it := range items {
			perNode[it.Node] = append(perNode[it.Node], it)
		}
		if len(perNode) != 3 {
			t.Fatalf("cluster tasks of %d nodes, want 3", len(perNode))
		}
		for node, its := range perNode {
			list, _ := c.list("pve-c001", node, q("source", "all", "limit", "25"))
			running := 0
			for _, it := range list {
				if it.EndTime == 0 {
					running++
				}
			}
			if len(its) != max(25, running) {
				t.Errorf("%s: %d cluster tasks, want 25 (running: %d)", node, len(its), running)
			}
			for i, it := range its {
				if it.UPID != list[i].UPID {
					t.Fatalf("%s: cluster task %d = %s, node list has %s", node, i, it.UPID, list[i].UPID)
				}
				if strings.Contains(it.User, "!") {
					t.Errorf("cluster task %s: user %q not split", it.UPID, it.User)
				}
				if it.EndTime == 0 && it.Status != "" {
					t.Errorf("running cluster task %s has status %q", it.UPID, it.Status)
				}
			}
		}
		if st := f.Stats("pve-c001"); st.ClusterTasks != 1 || st.TasksServed < 75 {
			t.Errorf("stats %+v: want 1 cluster tasks request and its 75 items served", st)
		}
	})
}

func TestPVENodesAndClusterStatus(t *testing.T) {
	runInBubble(t, Config{Seed: 12, PVEClusters: 1}, func(t *testing.T, f *Fleet, c *testClient) {
		f.SetFault("pve-c001", "pve-c001-n3", Fault{Offline: true})
		env := c.getOK("pve-c001", "pve-c001-n2", "/api2/json/nodes")
		var nodes []map[string]any
		json.Unmarshal(env.Data, &nodes)
		if len(nodes) != 3 {
			t.Fatalf("%d nodes, want 3", len(nodes))
		}
		r := f.Remotes()[0]
		for i, n := range nodes {
			name := fmt.Sprint(n["node"])
			if name != r.Nodes[i] || n["id"] != "node/"+name || n["type"] != "node" {
				t.Errorf("node %d = %v", i, n)
			}
			wantStatus := "online"
			if name == "pve-c001-n3" {
				wantStatus = "offline"
			} else if n["ssl_fingerprint"] != r.Endpoints[i].Fingerprint {
				t.Errorf("node %s fingerprint %v, want %s", name, n["ssl_fingerprint"], r.Endpoints[i].Fingerprint)
			}
			if n["status"] != wantStatus {
				t.Errorf("node %s status %v, want %s", name, n["status"], wantStatus)
			}
		}
		env = c.getOK("pve-c001", "pve-c001-n2", "/api2/json/cluster/status")
		var entries []map[string]any
		json.Unmarshal(env.Data, &entries)
		if len(entries) != 4 || entries[0]["type"] != "cluster" || fmt.Sprint(entries[0]["nodes"]) != "3" || fmt.Sprint(entries[0]["quorate"]) != "1" {
			t.Fatalf("cluster status = %v", entries)
		}
		for i, e := range entries[1:] {
			host := strings.TrimPrefix(r.Endpoints[i].URL, "https://")
			host = host[:strings.LastIndexByte(host, ':')]
			wantLocal, wantOnline := "0", "1"
			if e["name"] == "pve-c001-n2" {
				wantLocal = "1"
			}
			if e["name"] == "pve-c001-n3" {
				wantOnline = "0"
			}
			if e["ip"] != host || fmt.Sprint(e["local"]) != wantLocal || fmt.Sprint(e["online"]) != wantOnline || fmt.Sprint(e["nodeid"]) != strconv.Itoa(i+1) {
				t.Errorf("cluster status node entry %v: want ip %s local %s online %s", e, host, wantLocal, wantOnline)
			}
		}
	})
}

func TestPVEProxiesToOtherNodes(t *testing.T) {
	runInBubble(t, Config{Seed: 14, PVEClusters: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		direct, _ := c.list("pve-c001", "pve-c001-n3", q("source", "all", "limit", "100"))
		var proxied []item
		env := c.getOK("pve-c001", "pve-c001-n1", "/api2/json/nodes/pve-c001-n3/tasks?source=all&limit=100")
		json.Unmarshal(env.Data, &proxied)
		if len(direct) != 100 || !slices.EqualFunc(direct, proxied, func(a, b item) bool { return a.UPID == b.UPID }) {
			t.Fatalf("list of n3 via n1 differs from n3's own (%d vs %d items)", len(proxied), len(direct))
		}
		local := c.getOK("pve-c001", "pve-c001-n1", "/api2/json/nodes/localhost/tasks?limit=1")
		own := c.getOK("pve-c001", "pve-c001-n1", "/api2/json/nodes/pve-c001-n1/tasks?limit=1")
		if string(local.Data) != string(own.Data) {
			t.Errorf("node localhost answers %s, want the answering node's %s", local.Data, own.Data)
		}
		f.SetFault("pve-c001", "pve-c001-n3", Fault{Offline: true})
		r := c.get("pve-c001", "pve-c001-n1", "/api2/json/nodes/pve-c001-n3/tasks")
		if r.status != 595 || r.reason != "Connection refused" || len(r.body) != 0 || !r.close {
			t.Fatalf("list of an offline node via another = %d %q %q (close %v), want 595 Connection refused, empty body, closed", r.status, r.reason, r.body, r.close)
		}
		r = c.get("pve-c001", "pve-c001-n1", "/api2/json/nodes/pve-c009-n1/tasks")
		if r.status != http.StatusInternalServerError || !strings.Contains(r.reason, "hostname lookup") {
			t.Fatalf("list of an unknown node = %d %q, want 500 hostname lookup failed", r.status, r.reason)
		}
		r = c.get("pve-c001", "pve-c001-n1", "/api2/json/nodes/bad_name/tasks")
		if r.status != http.StatusBadRequest {
			t.Fatalf("list of an invalid node name = %d, want 400", r.status)
		}
	})
}
