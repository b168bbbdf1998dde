package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// serveEnv is one daemon (the real binary) serving a small frozen fleet,
// shared by TestServe's subtests, which run in order.
type serveEnv struct {
	fleet  *sim.Fleet
	config string // the configuration file
	url    string
	proc   *proc
	api    *apiClient
}

func newServeEnv(t *testing.T) *serveEnv {
	fleet := newFleet(t, sim.Config{Seed: 7, PVEClusters: 4, NodesPerCluster: 2, PBSServers: 2, History: 36 * time.Hour, TaskRate: 20, IndexSize: 400})
	e := &serveEnv{fleet: fleet}
	e.config = writeConfig(t, fleet, t.TempDir(), anyPort, tokensTOML)
	e.proc = start(t, "serve", "--config", e.config, "--log-level", "debug")
	e.url = e.proc.apiURL()
	e.api = &apiClient{t: t, base: e.url}
	e.api.waitReady(e.proc)
	return e
}

// TestServe runs the daemon against a simulated fleet and checks every
// endpoint over HTTP against the fleet's ground truth, the error answers,
// the token scopes, the tasks client, reloading and the graceful stop.
func TestServe(t *testing.T) {
	t.Parallel()
	e := newServeEnv(t)
	c := e.api
	truth := held(e.fleet)
	if len(truth) < 1000 {
		t.Fatalf("fleet holds %d tasks; the test wants a bigger sample", len(truth))
	}

	t.Run("probes", func(t *testing.T) {
		for _, p := range []string{"/livez", "/healthz", "/readyz"} {
			r := c.do(http.MethodGet, p, "", nil)
			if r.status != http.StatusOK || strings.TrimSpace(string(r.raw)) != "ok" {
				t.Errorf("GET %s = %d %q, want 200 ok", p, r.status, r.raw)
			}
		}
	})

	t.Run("refresh wait", func(t *testing.T) {
		res := c.refreshAll(opsSecret)
		got := []string{}
		for _, r := range res {
			got = append(got, r.Remote)
			if r.Duration < 0 {
				t.Errorf("refresh %s: duration %v", r.Remote, r.Duration)
			}
		}
		slices.Sort(got)
		want := remoteIDs(e.fleet)
		if !slices.Equal(got, want) {
			t.Errorf("refreshed %v, want %v", got, want)
		}
	})

	t.Run("list is the ground truth", func(t *testing.T) {
		got := c.list(opsSecret, nil)
		checkTruth(t, e.fleet, got)
		if !slices.IsSortedFunc(got, task.Compare) {
			t.Error("list not newest first")
		}
		var items []api.TaskListItem
		r := c.do(http.MethodGet, "/api2/json/remotes/tasks/list", opsSecret, nil).ok(t, &items)
		if len(items) != task.DefaultLimit || r.Total == nil || *r.Total != len(truth) {
			t.Errorf("default list: %d items, total %v; want %d items, total %d", len(items), r.Total, task.DefaultLimit, len(truth))
		}
	})

	t.Run("list filters", func(t *testing.T) {
		testListFilters(t, c, truth)
	})

	t.Run("statistics", func(t *testing.T) {
		for _, q := range []url.Values{
			{},
			{"remote": {"pbs001"}},
			{"typefilter": {"vzdump"}, "since": {strconv.FormatInt(truth[len(truth)/2].UPID.StartTime, 10)}},
		} {
			var got task.Statistics
			c.do(http.MethodGet, "/api2/json/remotes/tasks/statistics", opsSecret, q).ok(t, &got)
			f := filterOf(t, q)
			if want := statistics(truth, &f); !equalStatistics(got, want) {
				t.Errorf("statistics %v = %+v, want %+v", q, got, want)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		var st []api.RemoteStatus
		c.do(http.MethodGet, "/api2/json/remotes/status", opsSecret, nil).ok(t, &st)
		remotes := e.fleet.Remotes()
		if len(st) != len(remotes) {
			t.Fatalf("%d statuses, want %d", len(st), len(remotes))
		}
		for i, r := range remotes {
			s := st[i]
			if r.Kind == task.PBS {
				r.Nodes = []string{"localhost"} // a PBS lists its one node so
			}
			nodes := slices.Sorted(slices.Values(s.Nodes))
			if s.Remote != r.ID || s.Type != r.Kind.String() || s.State != "up" || s.LastSuccess == 0 ||
				s.ConsecutiveFailures != 0 || s.LastError != "" || !slices.Equal(nodes, slices.Sorted(slices.Values(r.Nodes))) || s.TasksFetched == 0 {
				t.Errorf("status %+v, want remote %s (%s) up with nodes %v", s, r.ID, r.Kind, r.Nodes)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		var body string
		eventually(t, 10*time.Second, "taskfleet_remotes_backfilled not 6", func() bool {
			r := c.do(http.MethodGet, "/metrics", opsSecret, nil)
			body = string(r.raw)
			return r.status == http.StatusOK && strings.Contains(body, "\ntaskfleet_remotes_backfilled 6\n")
		})
		for _, want := range []string{
			"\ntaskfleet_remotes_configured 6\n",
			"\ntaskfleet_tasks_cached " + strconv.Itoa(len(truth)) + "\n",
			`taskfleet_polls_total{remote="pve-c001",result="ok"}`,
			`taskfleet_poll_duration_seconds_count{remote="pbs002"}`,
			`taskfleet_remote_up{remote="pve-c004"} 1`,
			"\ntaskfleet_snapshot_age_seconds ",
			"\ntaskfleet_journal_size_bytes ",
			"\ngo_goroutines ",
			"\nprocess_open_fds ",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
			}
		}
	})

	t.Run("track", func(t *testing.T) {
		upid := e.fleet.StartTask(scopedRemote, scopedRemote+"-n1", "qmstart", "4242", time.Hour)
		if upid.IsZero() {
			t.Fatal("StartTask failed")
		}
		remoteUPID := task.RemoteUPID{Remote: scopedRemote, UPID: upid}.String()
		var got string
		c.do(http.MethodPost, "/api2/json/remotes/tasks/track", opsSecret, url.Values{"remote": {scopedRemote}, "upid": {upid.String()}}).ok(t, &got)
		if got != remoteUPID {
			t.Errorf("track answered %q, want %q", got, remoteUPID)
		}
		c.doJSON(http.MethodPost, "/api2/json/remotes/tasks/track", opsSecret, map[string]any{"upid": remoteUPID}).ok(t, &got)
		eventually(t, 15*time.Second, "tracked task not in the status and the list", func() bool {
			var st []api.RemoteStatus
			c.do(http.MethodGet, "/api2/json/remotes/status", opsSecret, nil).ok(t, &st)
			items := c.list(opsSecret, url.Values{"remote": {scopedRemote}, "running": {"1"}})
			return slices.Contains(st[slices.IndexFunc(st, func(s api.RemoteStatus) bool { return s.Remote == scopedRemote })].Tracked, remoteUPID) &&
				slices.Contains(keys(items), remoteUPID)
		})
	})

	t.Run("errors", func(t *testing.T) {
		testErrors(t, c, e.fleet)
	})

	t.Run("scoped token", func(t *testing.T) {
		testScopedToken(t, c, held(e.fleet))
	})

	t.Run("tasks client", func(t *testing.T) {
		testTasksClient(t, e)
	})

	t.Run("reload", func(t *testing.T) {
		testReload(t, e)
	})

	t.Run("graceful stop", func(t *testing.T) {
		e.proc.signal(syscall.SIGTERM)
		if code := e.proc.wait(30 * time.Second); code != 0 {
			t.Fatalf("exit code %d after SIGTERM, want 0", code)
		}
		logs := e.proc.stderr.String()
		api, svc := strings.Index(logs, `"message":"api stopped"`), strings.Index(logs, `"message":"service stopped"`)
		if api < 0 || svc < 0 || api > svc {
			t.Errorf("want the api stopped, then the service; logs:\n%s", tail(logs, 2000))
		}
		for _, secret := range append([]string{opsSecret, teamSecret, lateSecret}, tokenSecrets(e.fleet)...) {
			if strings.Contains(logs, secret) {
				t.Errorf("a secret is in the logs")
			}
		}
	})
}

// testListFilters compares filtered lists with the ground truth filtered
// by task.Filter.Match, the reference semantics.
func testListFilters(t *testing.T, c *apiClient, truth []task.Task) {
	mid := truth[len(truth)/2].UPID.StartTime
	node := truth[0].UPID.Node
	for _, tc := range []struct {
		name string
		q    url.Values
	}{
		{name: "remote", q: url.Values{"remote": {"pve-c002"}}},
		{name: "remote and node", q: url.Values{"remote": {"pve-c002"}, "node": {"pve-c002-n2"}}},
		{name: "node", q: url.Values{"node": {node}}},
		{name: "running", q: url.Values{"running": {"1"}}},
		{name: "errors", q: url.Values{"errors": {"true"}}},
		{name: "type", q: url.Values{"typefilter": {"vz"}}},
		{name: "user", q: url.Values{"userfilter": {"ROOT@"}}},
		{name: "status repeated", q: url.Values{"statusfilter": {"warning", "error"}}},
		{name: "status comma", q: url.Values{"statusfilter": {"ok,unknown"}}},
		{name: "since", q: url.Values{"since": {strconv.FormatInt(mid, 10)}}},
		{name: "until", q: url.Values{"until": {strconv.FormatInt(mid, 10)}}},
		{name: "page", q: url.Values{"start": {"100"}, "limit": {"25"}}},
		{name: "page past the end", q: url.Values{"start": {strconv.Itoa(len(truth))}, "limit": {"5"}}},
		{name: "combined", q: url.Values{"typefilter": {"vzdump"}, "statusfilter": {"ok"}, "since": {strconv.FormatInt(mid, 10)}, "limit": {"7"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.q.Has("limit") {
				tc.q.Set("limit", "0")
			}
			f := filterOf(t, tc.q)
			want := page(truth, &f)
			got := c.list(opsSecret, tc.q)
			if !slices.Equal(keys(got), keys(want)) {
				t.Errorf("list %v: %d tasks, want %d", tc.q, len(got), len(want))
			}
		})
	}
	t.Run("form and JSON bodies", func(t *testing.T) {
		f := filterOf(t, url.Values{"remote": {"pbs001"}, "running": {"1"}})
		want := keys(page(truth, &f))
		var fromForm, fromJSON []api.TaskListItem
		form := url.Values{"remote": {"pbs001"}, "running": {"1"}, "limit": {"0"}}
		c.doForm(http.MethodGet, "/api2/json/remotes/tasks/list", opsSecret, form).ok(t, &fromForm)
		c.doJSON(http.MethodGet, "/api2/json/remotes/tasks/list", opsSecret, map[string]any{"remote": "pbs001", "running": true, "limit": 0}).ok(t, &fromJSON)
		if got := keys(itemsToTasks(t, fromForm)); !slices.Equal(got, want) {
			t.Errorf("form body: %d tasks, want %d", len(got), len(want))
		}
		if got := keys(itemsToTasks(t, fromJSON)); !slices.Equal(got, want) {
			t.Errorf("JSON body: %d tasks, want %d", len(got), len(want))
		}
	})
}

// testErrors checks the 400, 401, 403, 404 and 405 answers.
func testErrors(t *testing.T, c *apiClient, fleet *sim.Fleet) {
	pbsUPID := fleet.Held("pbs001")[0].UPID.String()
	for _, tc := range []struct {
		name         string
		method, path string
		token        string
		q            url.Values
		status       int
		params       []string // parameters named in "errors"
		message      string   // part of the message
	}{
		{name: "bad parameters", method: http.MethodGet, path: "/api2/json/remotes/tasks/list", token: opsSecret,
			q: url.Values{"limit": {"-1"}, "statusfilter": {"bogus"}, "view": {"x"}, "since": {"yesterday"}}, status: 400,
			params: []string{"limit", "since", "statusfilter", "view"}},
		{name: "bad statistics parameter", method: http.MethodGet, path: "/api2/json/remotes/tasks/statistics", token: opsSecret,
			q: url.Values{"running": {"maybe"}}, status: 400, params: []string{"running"}},
		{name: "pbs upid for a pve remote", method: http.MethodPost, path: "/api2/json/remotes/tasks/track", token: opsSecret,
			q: url.Values{"remote": {"pve-c002"}, "upid": {pbsUPID}}, status: 400, params: []string{"upid"}},
		{name: "track without upid", method: http.MethodPost, path: "/api2/json/remotes/tasks/track", token: opsSecret,
			q: url.Values{"remote": {"pve-c002"}}, status: 400, params: []string{"upid"}},
		{name: "refresh wait not boolean", method: http.MethodPost, path: "/api2/json/remotes/tasks/refresh", token: opsSecret,
			q: url.Values{"wait": {"soon"}}, status: 400, params: []string{"wait"}},
		{name: "no token", method: http.MethodGet, path: "/api2/json/remotes/tasks/list", status: 401, message: "authentication required"},
		{name: "wrong token", method: http.MethodGet, path: "/api2/json/remotes/status", token: "not-a-configured-secret", status: 401, message: "authentication failed"},
		{name: "no token for metrics", method: http.MethodGet, path: "/metrics", status: 401},
		{name: "unknown remote", method: http.MethodGet, path: "/api2/json/remotes/tasks/list", token: opsSecret,
			q: url.Values{"remote": {"nope"}}, status: 404, message: "no such remote 'nope'"},
		{name: "unknown remote to track", method: http.MethodPost, path: "/api2/json/remotes/tasks/track", token: opsSecret,
			q: url.Values{"remote": {"nope"}, "upid": {pbsUPID}}, status: 404},
		{name: "unknown remote to refresh", method: http.MethodPost, path: "/api2/json/remotes/tasks/refresh", token: opsSecret,
			q: url.Values{"remotes": {"pve-c001,nope"}}, status: 404, message: "nope"},
		{name: "unknown path", method: http.MethodGet, path: "/api2/json/nodes", token: opsSecret, status: 404},
		{name: "wrong method", method: http.MethodGet, path: "/api2/json/remotes/tasks/refresh", token: opsSecret, status: 405},
		{name: "scoped token, other remote", method: http.MethodGet, path: "/api2/json/remotes/tasks/list", token: teamSecret,
			q: url.Values{"remote": {"pbs001"}}, status: 403, message: `may not access remote "pbs001"`},
		{name: "scoped token, unknown remote", method: http.MethodGet, path: "/api2/json/remotes/tasks/statistics", token: teamSecret,
			q: url.Values{"remote": {"nope"}}, status: 403},
		{name: "scoped token, track other remote", method: http.MethodPost, path: "/api2/json/remotes/tasks/track", token: teamSecret,
			q: url.Values{"remote": {"pbs001"}, "upid": {pbsUPID}}, status: 403},
		{name: "scoped token, refresh other remote", method: http.MethodPost, path: "/api2/json/remotes/tasks/refresh", token: teamSecret,
			q: url.Values{"remotes": {"pbs001"}}, status: 403},
		{name: "scoped token, metrics", method: http.MethodGet, path: "/metrics", token: teamSecret, status: 403},
		{name: "scoped token, reload", method: http.MethodPost, path: "/api2/json/reload", token: teamSecret, status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, tc.token, tc.q)
			if r.status != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, r.status, r.raw, tc.status)
			}
			if got := slices.Sorted(maps.Keys(r.Errors)); tc.params != nil && !slices.Equal(got, tc.params) {
				t.Errorf("errors name %v, want %v (%s)", got, tc.params, r.raw)
			}
			if !strings.Contains(r.Message, tc.message) {
				t.Errorf("message %q, want it to contain %q", r.Message, tc.message)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// testScopedToken checks that a token limited to one remote never sees
// another remote's task, in lists, statistics and status.
func testScopedToken(t *testing.T, c *apiClient, truth []task.Task) {
	var mine []task.Task
	for _, tk := range truth {
		if tk.Remote == scopedRemote {
			mine = append(mine, tk)
		}
	}
	for _, q := range []url.Values{{}, {"running": {"1"}}, {"errors": {"1"}}, {"typefilter": {"backup"}}, {"node": {"pbs001"}}} {
		q.Set("limit", "0")
		got := c.list(teamSecret, q)
		f := filterOf(t, q)
		if want := page(mine, &f); !slices.Equal(keys(got), keys(want)) {
			t.Errorf("scoped list %v: %d tasks, want %d", q, len(got), len(want))
		}
		for _, tk := range got {
			if tk.Remote != scopedRemote {
				t.Fatalf("scoped list %v has %s", q, tk.RemoteUPID())
			}
		}
	}
	var st task.Statistics
	c.do(http.MethodGet, "/api2/json/remotes/tasks/statistics", teamSecret, nil).ok(t, &st)
	all := task.NewFilter()
	if want := statistics(mine, &all); !equalStatistics(st, want) {
		t.Errorf("scoped statistics %+v, want %+v", st, want)
	}
	var status []api.RemoteStatus
	c.do(http.MethodGet, "/api2/json/remotes/status", teamSecret, nil).ok(t, &status)
	if len(status) != 1 || status[0].Remote != scopedRemote {
		t.Errorf("scoped status has %d remotes, want only %s", len(status), scopedRemote)
	}
	var res []api.RefreshResult
	c.do(http.MethodPost, "/api2/json/remotes/tasks/refresh", teamSecret, url.Values{"wait": {"1"}}).ok(t, &res)
	if len(res) != 1 || res[0].Remote != scopedRemote || res[0].Error != "" {
		t.Errorf("scoped refresh of all = %+v, want only %s", res, scopedRemote)
	}
}

// testTasksClient runs the tasks client against the daemon.
func testTasksClient(t *testing.T, e *serveEnv) {
	mine := 0
	for _, tk := range held(e.fleet) {
		if tk.Remote == "pve-c003" {
			mine++
		}
	}
	tokenFile := filepath.Join(t.TempDir(), "ops.secret")
	if err := os.WriteFile(tokenFile, []byte(opsSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--url", e.url, "--token-file", tokenFile}
	run := func(args ...string) *proc {
		p := start(t, args...)
		p.wait(time.Minute)
		return p
	}
	if p := run("tasks", "list", "--url", e.url, "--token", opsSecret); p.code != exitUsage || !strings.Contains(p.stderr.String(), "--token-file") || strings.Contains(p.stderr.String(), opsSecret) {
		t.Errorf("tasks list --token: exit %d, stderr %q; want 2, a pointer to --token-file and no secret", p.code, p.stderr.String())
	}

	p := run(append([]string{"tasks", "list", "--remote", "pve-c003", "--limit", "5"}, base...)...)
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	if p.code != 0 || len(lines) != 7 || !strings.HasPrefix(lines[0], "STARTED") ||
		lines[6] != "tasks 1-5 of "+thousands(mine) || strings.Count(p.stdout.String(), "pve-c003-n") != 5 {
		t.Errorf("tasks list: exit %d, output:\n%s", p.code, p.stdout.String())
	}

	p = run("tasks", "list", "--url", e.url, "--limit", "3")
	if p.code != 1 || !strings.Contains(p.stderr.String(), "401 Unauthorized: authentication required") {
		t.Errorf("tasks list without token: exit %d, stderr %q; want 1 and the 401", p.code, p.stderr.String())
	}
	p = startWith(t, []string{"TASKFLEET_TOKEN=" + teamSecret, "TASKFLEET_URL=" + e.url}, "tasks", "list", "--limit", "0", "--json")
	p.wait(time.Minute)
	var scopedAnswer struct {
		Data  []api.TaskListItem `json:"data"`
		Total *int               `json:"total"`
	}
	err := json.Unmarshal([]byte(p.stdout.String()), &scopedAnswer)
	scoped := scopedAnswer.Data
	if err != nil || p.code != 0 || len(scoped) == 0 || scopedAnswer.Total == nil || *scopedAnswer.Total != len(scoped) {
		t.Errorf("tasks list with $TASKFLEET_TOKEN: exit %d, %v, total %v for %d tasks", p.code, err, scopedAnswer.Total, len(scoped))
	}
	for _, tk := range itemsToTasks(t, scoped) {
		if tk.Remote != scopedRemote {
			t.Fatalf("tasks list with the team token shows %s", tk.RemoteUPID())
		}
	}

	p = run(append([]string{"tasks", "list", "--json", "--limit", "3", "--type", "vzdump", "--status", "ok"}, base...)...)
	var answer struct {
		Data  []api.TaskListItem `json:"data"`
		Total *int               `json:"total"`
	}
	err = json.Unmarshal([]byte(p.stdout.String()), &answer)
	items := answer.Data
	if err != nil || p.code != 0 || len(items) != 3 || answer.Total == nil || *answer.Total < 3 {
		t.Errorf("tasks list --json: exit %d, %d items, total %v (%v):\n%s", p.code, len(items), answer.Total, err, p.stdout.String())
	}
	for _, it := range items {
		if it.WorkerType != "vzdump" || it.Status == nil || *it.Status != "OK" {
			t.Errorf("tasks list --type vzdump --status ok gave %+v", it)
		}
	}

	p = run(append([]string{"tasks", "stats", "--json"}, base...)...)
	var st task.Statistics
	if err := json.Unmarshal([]byte(p.stdout.String()), &st); err != nil || p.code != 0 {
		t.Errorf("tasks stats --json: exit %d, %v:\n%s", p.code, err, p.stdout.String())
	}
	all := task.NewFilter()
	if want := statistics(held(e.fleet), &all); !equalStatistics(st, want) {
		t.Errorf("tasks stats --json = %+v, want %+v", st, want)
	}
	p = run(append([]string{"tasks", "stats", "--remote", "pbs002"}, base...)...)
	if out := p.stdout.String(); p.code != 0 || !strings.Contains(out, "REMOTE") || !strings.Contains(out, "\npbs002 ") || strings.Contains(out, "pve-c00") {
		t.Errorf("tasks stats --remote pbs002: exit %d:\n%s", p.code, out)
	}

	p = run(append([]string{"tasks", "refresh", "--wait", "--remote", "pve-c001,pbs002"}, base...)...)
	if out := p.stdout.String(); p.code != 0 || !strings.Contains(out, "\npve-c001 ") || !strings.Contains(out, "\npbs002 ") {
		t.Errorf("tasks refresh --wait: exit %d:\n%s", p.code, out)
	}

	upid := held(e.fleet)[0].RemoteUPID().String()
	p = run(append([]string{"tasks", "track", "--upid", upid}, base...)...)
	if p.code != 0 || strings.TrimSpace(p.stdout.String()) != "tracking "+upid {
		t.Errorf("tasks track: exit %d, %q", p.code, p.stdout.String())
	}

	p = run(append([]string{"tasks", "list", "--remote", "nope"}, base...)...)
	if p.code != 1 || !strings.Contains(p.stderr.String(), "404 Not Found: no such remote 'nope'") {
		t.Errorf("tasks list --remote nope: exit %d, stderr %q", p.code, p.stderr.String())
	}
	p = run(append([]string{"tasks", "list", "--since", "last tuesday"}, base...)...)
	if p.code != 2 || !strings.Contains(p.stderr.String(), "--since") {
		t.Errorf("tasks list --since 'last tuesday': exit %d, stderr %q", p.code, p.stderr.String())
	}
}

// testReload reloads the configuration over HTTP and with SIGHUP, valid
// and invalid.
func testReload(t *testing.T, e *serveEnv) {
	c := e.api
	c.do(http.MethodPost, "/api2/json/reload", opsSecret, nil).ok(t, nil)

	good, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, e.config, "\n[bogus]\nkey = 1\n")
	r := c.do(http.MethodPost, "/api2/json/reload", opsSecret, nil)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.Message, "bogus: unknown key") {
		t.Errorf("reload of an invalid file = %d %q, want 422 naming the problem", r.status, r.Message)
	}
	e.proc.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "SIGHUP with an invalid file not logged as rejected", func() bool {
		return strings.Contains(e.proc.stderr.String(), "reload rejected: keeping the running configuration")
	})
	if got := c.list(opsSecret, url.Values{"remote": {"pbs002"}}); len(got) == 0 || !e.proc.running() {
		t.Fatal("daemon does not serve after an invalid reload")
	}

	// A new token takes effect with the reload.
	late := `
[[api_token]]
id = "late"
secret = "` + lateSecret + `"
remotes = ["pbs002"]
`
	if err := os.WriteFile(e.config, append(good, late...), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.do(http.MethodGet, "/api2/json/remotes/status", lateSecret, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("token before the reload: %d, want 401", r.status)
	}
	e.proc.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "token added by SIGHUP not accepted", func() bool {
		return c.do(http.MethodGet, "/api2/json/remotes/status", lateSecret, nil).status == http.StatusOK
	})
	var st []api.RemoteStatus
	c.do(http.MethodGet, "/api2/json/remotes/status", lateSecret, nil).ok(t, &st)
	if len(st) != 1 || st[0].Remote != "pbs002" {
		t.Errorf("late token sees %+v, want only pbs002", st)
	}
}

// filterOf builds the task.Filter that list parameters q stand for.
func filterOf(t *testing.T, q url.Values) task.Filter {
	t.Helper()
	f := task.NewFilter()
	atoi := func(k string) int {
		n, err := strconv.Atoi(q.Get(k))
		if err != nil {
			t.Fatalf("%s=%q: %v", k, q.Get(k), err)
		}
		return n
	}
	if q.Has("limit") {
		f.Limit = atoi("limit")
	}
	if q.Has("start") {
		f.Start = atoi("start")
	}
	if q.Has("since") {
		f.Since = int64(atoi("since"))
	}
	if q.Has("until") {
		f.Until = int64(atoi("until"))
	}
	f.Running = q.Get("running") == "1" || q.Get("running") == "true"
	f.Errors = q.Get("errors") == "1" || q.Get("errors") == "true"
	f.TypeFilter, f.UserFilter = q.Get("typefilter"), q.Get("userfilter")
	f.Remote, f.Node = q.Get("remote"), q.Get("node")
	for _, v := range q["statusfilter"] {
		for s := range strings.SplitSeq(v, ",") {
			class, ok := task.ParseStatusClass(s)
			if !ok {
				t.Fatalf("statusfilter %q", s)
			}
			f.StatusFilter = f.StatusFilter.Add(class)
		}
	}
	return f
}

// page applies f to tasks sorted newest first, as the API must.
func page(tasks []task.Task, f *task.Filter) []task.Task {
	var out []task.Task
	for i := range tasks {
		if f.Match(&tasks[i]) {
			out = append(out, tasks[i])
		}
	}
	slices.SortFunc(out, task.Compare)
	out = out[min(f.Start, len(out)):]
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// statistics counts the finished tasks matching f by type and by remote.
func statistics(tasks []task.Task, f *task.Filter) task.Statistics {
	st := task.Statistics{ByType: map[string]task.Counts{}, ByRemote: map[string]task.Counts{}}
	for i := range tasks {
		tk := &tasks[i]
		if tk.Running() || !f.Match(tk) {
			continue
		}
		n := st.ByType[tk.UPID.Type]
		n.Add(tk.Class())
		st.ByType[tk.UPID.Type] = n
		n = st.ByRemote[tk.Remote]
		n.Add(tk.Class())
		st.ByRemote[tk.Remote] = n
	}
	return st
}

func equalStatistics(a, b task.Statistics) bool {
	return maps.Equal(a.ByType, b.ByType) && maps.Equal(a.ByRemote, b.ByRemote)
}

func remoteIDs(f *sim.Fleet) []string {
	var out []string
	for _, r := range f.Remotes() {
		out = append(out, r.ID)
	}
	return out
}

func tokenSecrets(f *sim.Fleet) []string {
	var out []string
	for _, r := range f.Remotes() {
		out = append(out, r.TokenSecret)
	}
	return out
}
