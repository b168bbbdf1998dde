package proxmox

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/internal/fixtures"
	"github.com/taskfleet/taskfleet/task"
)

// serveFixtures serves fixture files (path -> fixture) as a remote would,
// and records the Authorization header of the last request.
func serveFixtures(t *testing.T, kind task.Kind, files map[string]string) (*Client, *string) {
	t.Helper()
	bodies := map[string][]byte{}
	for path, rel := range files {
		bodies[path] = fixtures.Read(t, rel)
	}
	var auth string
	n := newMemNet()
	srv := startMem(t, n, "fixture.test:8006", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		b, ok := bodies[r.URL.EscapedPath()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = w.Write(b)
	}))
	cfg := testConfig(kind, srv.endpoint())
	cfg.DialContext = n.DialContext
	cfg.MaxConns = 1 // requests are sequential, so auth needs no lock
	return newTestClient(t, cfg), &auth
}

func TestFixturePVETaskList(t *testing.T) {
	c, _ := serveFixtures(t, task.PVE, map[string]string{
		"/api2/json/nodes/mini-pve-0/tasks": "pve/responses/nodes-node-tasks-source-all-limit3.json",
	})
	page, err := c.ListTasks(context.Background(), "mini-pve-0", ListQuery{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Skipped) != 0 || page.Returned != 3 || page.Total != -1 {
		t.Fatalf("page: returned %d, total %d, skipped %v", page.Returned, page.Total, page.Skipped)
	}
	want := []struct {
		typ, id string
		start   int64
		end     int64
		status  string
	}{
		{typ: "vzdump", id: "103", start: 1637122234}, // running: "RUNNING", saved "0", no endtime
		{typ: "aptupdate", id: "", start: 1637122156, end: 1637122161, status: "OK"},
		{typ: "vncshell", id: "", start: 1637121762, end: 1637121960, status: "OK"},
	}
	for i, w := range want {
		got := page.Tasks[i]
		if got.Remote != "east" || got.UPID.Node != "mini-pve-0" || got.UPID.Type != w.typ || got.UPID.ID != w.id ||
			got.UPID.User != "root@pam" || got.UPID.StartTime != w.start || got.EndTime != w.end || got.Status != w.status {
			t.Errorf("task %d = %+v, want %+v", i, got, w)
		}
	}
	if !page.Tasks[0].Running() {
		t.Errorf("task 0 should be running")
	}
}

func TestFixturePBSTaskList(t *testing.T) {
	const rel = "pbs/responses/nodes-tasks-typefilter-backup-limit3.json"
	c, _ := serveFixtures(t, task.PBS, map[string]string{"/api2/json/nodes/localhost/tasks": rel})
	page, err := c.ListTasks(context.Background(), "", ListQuery{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	// total 4 for 3 items is PBS's "there may be more" marker.
	if len(page.Tasks) != 3 || page.Total != 4 || len(page.Skipped) != 0 {
		t.Fatalf("got %d tasks, total %d, skipped %v", len(page.Tasks), page.Total, page.Skipped)
	}
	var raw struct {
		Data []struct {
			UPID      string `json:"upid"`
			WorkerID  string `json:"worker_id"`
			StartTime int64  `json:"starttime"`
			EndTime   int64  `json:"endtime"`
			Status    string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(fixtures.Read(t, rel), &raw); err != nil {
		t.Fatal(err)
	}
	for i, it := range raw.Data {
		got := page.Tasks[i]
		// The list says node "localhost"; the UPID has the real host.
		if got.UPID.Node != "pbshost" || got.UPID.Kind != task.PBS || got.UPID.String() != it.UPID {
			t.Errorf("task %d: upid %v (node %q)", i, got.UPID, got.UPID.Node)
		}
		// worker_id is the unescaped id: an independent check of the UPID's unescaping.
		if got.UPID.ID != it.WorkerID || got.UPID.StartTime != it.StartTime || got.EndTime != it.EndTime || got.Status != it.Status {
			t.Errorf("task %d = %+v, want id %q start %d end %d status %q", i, got, it.WorkerID, it.StartTime, it.EndTime, it.Status)
		}
	}
}

func TestFixtureNodes(t *testing.T) {
	c, _ := serveFixtures(t, task.PVE, map[string]string{"/api2/json/nodes": "pve/responses/nodes-list-one-online-node.json"})
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Node{Name: "proxmox3", Online: true,
		Fingerprint: "C2:4A:5F:42:C2:78:4E:6E:2B:53:C2:8E:8F:B5:2D:86:64:B7:6C:13:F0:B0:61:F0:CB:29:2F:C0:10:9A:5F:F3"}
	if len(nodes) != 1 || nodes[0] != want {
		t.Fatalf("Nodes = %+v, want [%+v]", nodes, want)
	}
	// The fingerprint PVE reports is usable as a pin.
	if _, err := config.ParseFingerprint(nodes[0].Fingerprint); err != nil {
		t.Fatal(err)
	}
}

func TestFixtureTaskStatus(t *testing.T) {
	cases := []struct {
		rel, upid, node string
		running         bool
		exit            string
	}{
		{rel: "pve/responses/task-status-running-qmconfig.json", upid: "UPID:x:000039C6:1FE23176:619510B1:qmconfig:113:terraform-prov@pve:", node: "x", running: true},
		{rel: "pve/responses/task-status-stopped-warnings-qmstart.json", upid: "UPID:dahu-2:00007323:001036A5:6419CAF8:qmstart:100:root@pam:", node: "dahu-2", exit: "WARNINGS: 1"},
		// The docs author renamed the node in the UPID but not the node
		// field: the request goes to the UPID's node, the answer's node
		// field is reported as is.
		{rel: "pve/responses/task-status-stopped-ok-vzcreate.json", upid: "UPID:example-node:002E096A:0E10F08E:6382D261:vzcreate:123:root@pam:", node: "hydrogen-pve-0", exit: "OK"},
	}
	for _, tc := range cases {
		t.Run(tc.rel, func(t *testing.T) {
			u, err := task.ParsePVE(tc.upid)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := serveFixtures(t, task.PVE, map[string]string{
				"/api2/json/nodes/" + u.Node + "/tasks/" + tc.upid + "/status": tc.rel,
			})
			st, err := c.TaskStatus(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			want := TaskStatus{UPID: u, Node: tc.node, Running: tc.running, ExitStatus: tc.exit}
			if st != want {
				t.Fatalf("TaskStatus = %+v, want %+v", st, want)
			}
		})
	}
}

// TestFixtureAuthHeaders checks the header against the forms documented in
// auth/auth-formats.json (PDM's client forms).
func TestFixtureAuthHeaders(t *testing.T) {
	var doc struct {
		PVE struct {
			Header struct {
				PDM string `json:"pdm_client_form"`
			} `json:"api_token_header"`
		} `json:"pve"`
		PBS struct {
			Header struct {
				Forms []struct {
					Form string `json:"form"`
				} `json:"client_forms"`
			} `json:"api_token_header"`
		} `json:"pbs"`
	}
	if err := json.Unmarshal(fixtures.Read(t, "auth/auth-formats.json"), &doc); err != nil {
		t.Fatal(err)
	}
	pveWant := strings.NewReplacer("<user@realm!tokenname>", testTokenID, "<secret>", testSecret).Replace(doc.PVE.Header.PDM)
	var pbsWant string
	for _, f := range doc.PBS.Header.Forms {
		if strings.HasPrefix(f.Form, "PBSAPIToken=") {
			pbsWant = strings.NewReplacer("<tokenid>", testTokenID, "<secret>", testSecret).Replace(f.Form)
		}
	}
	if pveWant == "" || pbsWant == "" {
		t.Fatal("fixture lacks the documented forms")
	}
	for _, tc := range []struct {
		kind task.Kind
		path string
		rel  string
		want string
	}{
		{kind: task.PVE, path: "/api2/json/nodes", rel: "pve/responses/nodes-list-one-online-node.json", want: pveWant},
		{kind: task.PBS, path: "/api2/json/nodes/localhost/tasks", rel: "pbs/responses/nodes-tasks-typefilter-backup-limit3.json", want: pbsWant},
	} {
		c, auth := serveFixtures(t, tc.kind, map[string]string{tc.path: tc.rel})
		var err error
		if tc.kind == task.PVE {
			_, err = c.Nodes(context.Background())
		} else {
			_, err = c.ListTasks(context.Background(), "", ListQuery{})
		}
		if err != nil {
			t.Fatal(err)
		}
		if *auth != tc.want {
			t.Errorf("%v: Authorization = %q, want %q", tc.kind, *auth, tc.want)
		}
	}
}

// TestFixtureHTTPErrors replays every observed error response of
// errors/http-errors.json and checks its classification and message.
func TestFixtureHTTPErrors(t *testing.T) {
	var doc struct {
		Observed []struct {
			Product  string  `json:"product"`
			Status   int     `json:"status"`
			Reason   string  `json:"reason"`
			Body     *string `json:"body"`
			BodyText *string `json:"body_text"`
			Source   string  `json:"source"`
		} `json:"observed"`
	}
	if err := json.Unmarshal(fixtures.Read(t, "errors/http-errors.json"), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Observed) < 10 {
		t.Fatalf("only %d observed errors in the fixture", len(doc.Observed))
	}
	for i, o := range doc.Observed {
		kind := task.PVE
		if o.Product == "pbs" {
			kind = task.PBS
		}
		body, ctype := "", ""
		switch {
		case o.Body != nil:
			body, ctype = *o.Body, "application/json"
		case o.BodyText != nil:
			body, ctype = *o.BodyText, "application/json;charset=UTF-8" // PBS: plain text despite the type
		}
		reason := o.Reason
		if reason == "" {
			reason = http.StatusText(o.Status)
		}
		n := newMemNet()
		srv := startMem(t, n, "err.test:8006", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rawResponse(w, o.Status, reason, ctype, body, -1)
		}))
		cfg := testConfig(kind, srv.endpoint())
		cfg.DialContext = n.DialContext
		c := newTestClient(t, cfg)
		_, err := c.ListTasks(context.Background(), "pve1", ListQuery{})
		if err == nil {
			t.Fatalf("observed[%d]: no error", i)
		}
		wantKind := "server"
		switch o.Status {
		case 401, 403:
			wantKind = "auth"
		case 595, 596:
			wantKind = "node_offline"
		}
		msg := err.Error()
		if got := ErrorKind(err); got != wantKind {
			t.Errorf("observed[%d] (%s): kind %q, want %q: %v", i, o.Source, got, wantKind, err)
		}
		for _, part := range []string{`remote "east"`, `node "`, "/api2/json/nodes/", strings.Fields(reason)[0]} {
			if !strings.Contains(msg, part) {
				t.Errorf("observed[%d]: message %q lacks %q", i, msg, part)
			}
		}
		if o.BodyText != nil && !strings.Contains(msg, *o.BodyText) {
			t.Errorf("observed[%d]: message %q lacks the PBS error text", i, msg)
		}
		if o.Body != nil && strings.Contains(*o.Body, "vmid") && !strings.Contains(msg, "vmid: invalid format") {
			t.Errorf("observed[%d]: message %q lacks the parameter error", i, msg)
		}
		assertNoSecret(t, "error", msg)
	}
}
