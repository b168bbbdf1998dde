package sim

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPBSList(t *testing.T) {
	runInBubble(t, Config{Seed: 20, PBSServers: 1, History: 3 * 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote = "pbs001"
		time.Sleep(2*time.Hour + 10*time.Minute) // backups and the sync job run
		u := f.StartTask(remote, remote, "reader", "store1:vm/101/386D4300", time.Hour)
		all, total := c.list(remote, remote, q("limit", "0"))
		held := heldOn(f, remote, remote)
		if len(all) != len(held) || total != len(all) {
			t.Fatalf("limit=0 (unlimited on PBS) returned %d items, total %d; the server holds %d", len(all), total, len(held))
		}
		running := 0
		lastEnd := int64(math.MaxInt64)
		for i, it := range all {
			if want, ok := held[it.UPID]; !ok || it.toTask(t, remote) != want {
				t.Fatalf("item %d %s does not match the held task %+v", i, it.UPID, want)
			}
			if it.Node != "localhost" {
				t.Fatalf("item node %q, want localhost", it.Node)
			}
			if it.Type != "" || it.ID != nil {
				t.Fatalf("item has PVE field names: %+v", it)
			}
			if it.WorkerID == nil {
				if it.WorkerType != "logrotate" {
					t.Errorf("%s has no worker id", it.UPID)
				}
			} else if id := *it.WorkerID; id == "" || !strings.Contains(it.UPID, strings.NewReplacer(":", `\x3a`, "/", "-", "-", `\x2d`).Replace(id)) {
				t.Errorf("worker_id %q is not the unescaped id of %s", id, it.UPID)
			}
			if it.EndTime == 0 {
				if running < i {
					t.Fatalf("running task %s after finished ones", it.UPID)
				}
				if it.Status != "" {
					t.Fatalf("running PBS item has status %q", it.Status)
				}
				running++
				continue
			}
			if it.EndTime > lastEnd {
				t.Fatalf("finished tasks not newest finished first at %d", i)
			}
			lastEnd = it.EndTime
		}
		if running < 2 {
			t.Fatalf("%d running tasks, want the reader and nightly backups", running)
		}

		// total = returned + start, plus one when the page is full.
		for _, tc := range []struct {
			query     string
			items     int
			wantTotal int
		}{
			{q("limit", "10"), 10, 11},
			{q("limit", "10", "start", "5"), 10, 16},
			{q("start", strconv.Itoa(len(all)-3), "limit", "10"), 3, len(all)},
			{q("start", strconv.Itoa(len(all)+2)), 0, len(all) + 2},
			{"", 50, 51},
		} {
			items, total := c.list(remote, remote, tc.query)
			if len(items) != tc.items || total != tc.wantTotal {
				t.Errorf("?%s: %d items, total %d; want %d, %d", tc.query, len(items), total, tc.items, tc.wantTotal)
			}
		}
		// Paging with small pages gives the whole list.
		paged := c.fetchAll(remote, remote, 13, "")
		if len(paged) != len(all) {
			t.Fatalf("paging by 13 gave %d items, want %d", len(paged), len(all))
		}
		for i := range paged {
			if paged[i].UPID != all[i].UPID {
				t.Fatalf("paged item %d differs", i)
			}
		}

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
			items, _ := c.list(remote, remote, query+"&limit=0")
			if want := count(pred); len(items) != want {
				t.Errorf("%s: %d items, want %d", name, len(items), want)
			}
			for _, it := range items {
				if !pred(it) {
					t.Errorf("%s: %s does not match", name, it.UPID)
					return
				}
			}
		}
		since := u.StartTime - 3600
		check("since", q("since", strconv.FormatInt(since, 10)), func(it item) bool { return it.StartTime >= since })
		check("until", q("until", strconv.FormatInt(since, 10)), func(it item) bool { return it.StartTime <= since })
		check("running", q("running", "1"), func(it item) bool { return it.EndTime == 0 })
		check("typefilter is a substring", q("typefilter", "job"), func(it item) bool { return strings.Contains(it.WorkerType, "job") })
		check("userfilter is a case-sensitive substring of the full auth id", q("userfilter", "!pve-1"), func(it item) bool { return strings.Contains(it.User, "!pve-1") })
		check("userfilter case", q("userfilter", "ROOT"), func(it item) bool { return false })
		check("errors", q("errors", "true"), func(it item) bool { return it.Status != "OK" })
		check("statusfilter drops running", "statusfilter=ok&statusfilter=warning", func(it item) bool {
			return it.Status == "OK" || strings.HasPrefix(it.Status, "WARNINGS: ")
		})
		check("store", q("store", "store2"), func(it item) bool {
			id := ""
			if it.WorkerID != nil {
				id = *it.WorkerID
			}
			switch it.WorkerType {
			case "backup", "prune", "prunejob", "garbage_collection":
				return id == "store2" || strings.HasPrefix(id, "store2:")
			case "syncjob":
				return strings.Split(id, ":")[2] == "store2"
			case "verificationjob", "verify_snapshot":
				return strings.HasPrefix(id, "store2:")
			}
			return false
		})

		for _, bad := range []string{"limit=x", "running=maybe", "statusfilter=OK", "foo=1", "start=1&start=2"} {
			r := c.get(remote, remote, "/api2/json/nodes/localhost/tasks?"+bad)
			if r.status != http.StatusBadRequest || !strings.HasPrefix(string(r.body), "parameter verification failed") || r.close {
				t.Errorf("?%s = %d %q (close %v), want 400 with a plain-text reason, connection kept", bad, r.status, r.body, r.close)
			}
		}
	})
}

func TestPBSTaskStatus(t *testing.T) {
	runInBubble(t, Config{Seed: 22, PBSServers: 1, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote = "pbs001"
		u := f.StartTask(remote, remote, "verificationjob", "store1:v-deadbeef-0001", 5*time.Minute)
		status := func(upid string) (*response, map[string]any) {
			r := c.get(remote, remote, "/api2/json/nodes/localhost/tasks/"+escapeUPID(upid)+"/status")
			var env struct{ Data map[string]any }
			if r.status == http.StatusOK {
				if err := json.Unmarshal(r.body, &env); err != nil {
					t.Fatalf("decode %s: %v", r.body, err)
				}
			}
			return r, env.Data
		}
		r, st := status(u.String())
		if r.status != 200 || st["status"] != "running" || st["exitstatus"] != nil || st["node"] != "pbs001" || st["id"] != "store1:v-deadbeef-0001" || st["user"] != "taskfleet@pbs" || st["tokenid"] != "poll" {
			t.Fatalf("status of a running task = %d %v", r.status, st)
		}
		time.Sleep(5 * time.Minute)
		if r, st = status(u.String()); st["status"] != "stopped" || st["exitstatus"] != "OK" {
			t.Fatalf("status after 5 minutes = %d %v", r.status, st)
		}
		// logrotate has no id: JSON null.
		var rotate string
		for _, tk := range f.Truth(remote) {
			if tk.UPID.Type == "logrotate" {
				rotate = tk.UPID.String()
				break
			}
		}
		if r, st = status(rotate); r.status != 200 || st["id"] != nil || !strings.Contains(string(r.body), `"id":null`) {
			t.Fatalf("status of logrotate = %s, want id null", r.body)
		}
		// A well-formed UPID the server never ran: stopped, unknown (as PBS).
		unknown := strings.Replace(u.String(), ":verificationjob:", ":syncjob:", 1)
		if r, st = status(unknown); r.status != 200 || st["status"] != "stopped" || st["exitstatus"] != "unknown" {
			t.Fatalf("status of an unknown task = %d %v, want stopped/unknown", r.status, st)
		}
		if r, _ = status("UPID:pve:00039E4D:002638B8:67B4A9D1:stopall::root@pam:"); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "'upid'") {
			t.Fatalf("status of a PVE UPID = %d %s, want 400", r.status, r.body)
		}
	})
}
