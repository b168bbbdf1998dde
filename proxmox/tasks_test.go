package proxmox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// serveBody serves body for every request and returns a client.
func serveBody(t *testing.T, kind task.Kind, body []byte) *Client {
	t.Helper()
	n := newMemNet()
	srv := startMem(t, n, "pve1.test:8006", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", pveJSON)
		_, _ = w.Write(body)
	}))
	cfg := testConfig(kind, srv.endpoint())
	cfg.DialContext = n.DialContext
	return newTestClient(t, cfg)
}

// TestListItems decodes hand-written pages (testdata/list-items-*.json) with
// the traps of real lists: numbers as strings, token users split or not,
// null worker ids, and malformed items, which are skipped one by one while
// the rest of the page is kept.
func TestListItems(t *testing.T) {
	type want struct {
		upid    string
		end     int64
		status  string
		running bool
	}
	cases := []struct {
		file    string
		kind    task.Kind
		node    string
		tasks   []want
		skipped map[int]string // item index -> part of the reason
	}{
		{
			file: "testdata/list-items-pve.json", kind: task.PVE, node: "pve1",
			tasks: []want{
				{upid: "UPID:pve1:0000A001:00B0C001:65000000:vzdump:101:monitor@pve!poller:", running: true},
				{upid: "UPID:pve1:0000A002:00B0C002:65000010:qmstart:102:monitor@pve!poller:", end: 1694498840, status: "OK"},
				{upid: "UPID:pve1:0000A007:00B0C007:65000060:aptupdate::root@pam:", running: true},
				{upid: "UPID:pve1:0000A008:00B0C008:65000070:aptupdate::root@pam:", end: 1694498999, status: "command 'apt-get update' failed: exit code 100"},
				{upid: "UPID:pve1:0000A009:00B0C009:65000080:srvreload:networking:root@pam:", end: 1694498950, status: "WARNINGS: 1"},
			},
			skipped: map[int]string{
				2:  "invalid upid",
				3:  "no starttime",
				4:  "differs from the upid",
				5:  "invalid upid",
				6:  "upid: got JSON number, want string",
				7:  "task item: got JSON string, want object",
				11: "endtime: not an integer",
				12: "task item: got JSON null, want object",
			},
		},
		{
			file: "testdata/list-items-pbs.json", kind: task.PBS, node: "localhost",
			tasks: []want{
				{upid: "UPID:pbs1:00000624:0000652A:000005B1:67106DB7:garbage_collection:store1:root@pam:", running: true},
				{upid: `UPID:pbs1:00000624:0000652A:000005B2:67106DC7:backup:store1\x3avm-100:sync@pbs!job:`, end: 1729130021, status: "OK"},
				{upid: "UPID:pbs1:00000624:0000652A:000005B4:67106DE7:logrotate::root@pam:", end: 1729129960, status: "unknown"},
			},
			skipped: map[int]string{2: "invalid upid", 3: "bad escape"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			c := serveBody(t, tc.kind, body)
			page, err := c.ListTasks(context.Background(), tc.node, ListQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if page.Returned != len(tc.tasks)+len(tc.skipped) || page.Total != page.Returned {
				t.Errorf("returned %d, total %d", page.Returned, page.Total)
			}
			if len(page.Tasks) != len(tc.tasks) {
				t.Fatalf("got %d tasks, want %d: %+v", len(page.Tasks), len(tc.tasks), page.Tasks)
			}
			for i, w := range tc.tasks {
				got := page.Tasks[i]
				if got.UPID.String() != w.upid || got.Remote != "east" || got.EndTime != w.end || got.Status != w.status || got.Running() != w.running {
					t.Errorf("task %d = %+v, want %+v", i, got, w)
				}
			}
			if len(page.Skipped) != len(tc.skipped) {
				t.Errorf("skipped %d items, want %d: %v", len(page.Skipped), len(tc.skipped), page.Skipped)
			}
			for _, e := range page.Skipped {
				var ie *ItemError
				if !errors.As(e, &ie) {
					t.Fatalf("skipped error %T", e)
				}
				reason, ok := tc.skipped[ie.Index]
				if !ok || !strings.Contains(e.Error(), reason) {
					t.Errorf("item %d skipped with %q, want a reason with %q", ie.Index, e, reason)
				}
				msg := e.Error()
				for _, part := range []string{`remote "east"`, fmt.Sprintf("node %q", tc.node), "https://pve1.test:8006/api2/json/nodes/" + tc.node + "/tasks", fmt.Sprintf("item %d", ie.Index)} {
					if !strings.Contains(msg, part) {
						t.Errorf("item error lacks %q: %s", part, msg)
					}
				}
			}
		})
	}
	// The UPID is the source of truth: PVE archives token tasks with the
	// user split into user and tokenid, PBS unescapes the worker id.
	body, _ := os.ReadFile("testdata/list-items-pbs.json")
	page, err := serveBody(t, task.PBS, body).ListTasks(context.Background(), "", ListQuery{})
	if err != nil || page.Tasks[1].UPID.ID != "store1:vm/100" || page.Tasks[1].UPID.User != "sync@pbs!job" || page.Tasks[1].UPID.Node != "pbs1" {
		t.Errorf("PBS identity from the UPID: %+v, %v", page.Tasks[1].UPID, err)
	}
}

// TestManyMalformedItems: a page of thousands of malformed items keeps
// maxSkipped errors and counts the rest in one.
func TestManyMalformedItems(t *testing.T) {
	body := `{"data":[` + strings.Repeat(`0,`, 2499) + `0]}`
	page, err := serveBody(t, task.PVE, []byte(body)).ListTasks(context.Background(), "pve1", ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	last := page.Skipped[len(page.Skipped)-1]
	if page.Returned != 2500 || len(page.Tasks) != 0 || len(page.Skipped) != maxSkipped+1 || !strings.Contains(last.Error(), "2400 more malformed items") {
		t.Errorf("returned %d, %d tasks, %d errors, last %v", page.Returned, len(page.Tasks), len(page.Skipped), last)
	}
}

// TestListQuery checks the query strings sent for each product.
func TestListQuery(t *testing.T) {
	pve := newTestClient(t, testConfig(task.PVE, Endpoint{URL: "https://pve1"}))
	pbs := newTestClient(t, testConfig(task.PBS, Endpoint{URL: "https://pbs1"}))
	cases := []struct {
		c    *Client
		q    ListQuery
		want string
	}{
		{c: pve, q: ListQuery{}, want: "limit=500&source=all"},
		{c: pve, q: ListQuery{Since: 5, Until: 9, Start: 20, Limit: 10}, want: "limit=10&since=5&source=all&start=20&until=9"},
		{c: pve, q: ListQuery{Running: true}, want: "limit=500&source=active"},
		{c: pve, q: ListQuery{Source: "archive"}, want: "limit=500&source=archive"},
		{c: pbs, q: ListQuery{Since: 5, Running: true, Source: "all"}, want: "limit=500&running=1&since=5"},
	}
	for _, tc := range cases {
		v, err := tc.c.listQuery(tc.q)
		if err != nil || v.Encode() != tc.want {
			t.Errorf("%v %+v: %q, %v; want %q", tc.c.Kind(), tc.q, v.Encode(), err, tc.want)
		}
	}
	for _, q := range []ListQuery{{Source: "everything"}, {Start: -1}, {Limit: -5}} {
		if _, err := pve.ListTasks(context.Background(), "pve1", q); err == nil {
			t.Errorf("%+v accepted", q)
		}
	}
	if _, err := pve.ListTasks(context.Background(), "", ListQuery{}); err == nil {
		t.Error("empty PVE node accepted")
	}
}

// TestBadStatus: the status endpoint's answer must be for the task asked
// about and say running or stopped.
func TestBadStatus(t *testing.T) {
	u, err := task.ParsePVE("UPID:pve1:0000A001:00B0C001:65000000:vzdump:101:root@pam:")
	if err != nil {
		t.Fatal(err)
	}
	for body, reason := range map[string]string{
		`{"data":{"upid":"UPID:pve1:0000A002:00B0C001:65000000:vzdump:101:root@pam:","status":"running"}}`: "status is for upid",
		`{"data":{"status":"paused"}}`: `status "paused"`,
		`{"data":{"exitstatus":"OK"}}`: "no status",
		`{"data":null}`:                `no "data"`,
		`{"data":{"status":1}}`:        "status: got JSON number, want string",
	} {
		_, err := serveBody(t, task.PVE, []byte(body)).TaskStatus(context.Background(), u)
		var me *MalformedError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: want MalformedError %q, got %v", body, reason, err)
		}
	}
}
