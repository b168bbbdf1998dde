package proxmox

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// cluster is a fake PVE cluster of three nodes, each served at its own
// address on an in-memory network.
type cluster struct {
	f     *fakeRemote
	net   *memNet
	srvs  map[string]*testServer // by node
	addrs map[string]string      // by node
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	cl := &cluster{f: newFakeRemote(task.PVE, "pve1", "pve2", "pve3"), net: newMemNet(),
		srvs: map[string]*testServer{}, addrs: map[string]string{}}
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		fillNode(cl.f, n, 1, 5)
		cl.addrs[n] = n + ".test:8006"
		cl.srvs[n] = startMem(t, cl.net, cl.addrs[n], cl.f.handler(n))
	}
	return cl
}

// client returns a client with the given nodes' endpoints, in order.
func (cl *cluster) client(t *testing.T, nodes ...string) *Client {
	t.Helper()
	var eps []Endpoint
	for _, n := range nodes {
		eps = append(eps, cl.srvs[n].endpoint())
	}
	cfg := testConfig(task.PVE, eps...)
	cfg.DialContext = cl.net.DialContext
	return newTestClient(t, cfg)
}

// requests returns how many requests each node's endpoint served.
func (cl *cluster) requests() map[string]int {
	cl.f.mu.Lock()
	defer cl.f.mu.Unlock()
	return maps.Clone(cl.f.byLocal)
}

func TestEndpointFallback(t *testing.T) {
	cl := newCluster(t)
	cl.net.setRefuse(cl.addrs["pve1"], true)
	c := cl.client(t, "pve1", "pve2", "pve3")
	for range 3 {
		if _, err := c.Nodes(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// pve1 was tried once; pve2 answered and was used from then on.
	if d1, d2, d3 := cl.net.dialCount(cl.addrs["pve1"]), cl.net.dialCount(cl.addrs["pve2"]), cl.net.dialCount(cl.addrs["pve3"]); d1 != 1 || d2 != 1 || d3 != 0 {
		t.Errorf("dials pve1 %d, pve2 %d, pve3 %d; want 1, 1, 0", d1, d2, d3)
	}
	if r := cl.requests(); r["pve2"] != 3 || r["pve3"] != 0 {
		t.Errorf("requests per endpoint %v", r)
	}
	st := c.EndpointStates()
	if st[0].DownSince.IsZero() || !strings.Contains(st[0].LastError, "connection refused") || !st[1].DownSince.IsZero() {
		t.Errorf("endpoint states %+v", st)
	}
	// pve2 fails too: pve3 is next; pve1, which failed within the last
	// minute, comes last and is not dialed again.
	cl.net.setRefuse(cl.addrs["pve2"], true)
	c.transport.CloseIdleConnections()
	if _, err := c.Nodes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := cl.requests(); r["pve3"] != 1 || cl.net.dialCount(cl.addrs["pve1"]) != 1 {
		t.Errorf("after pve2 failed: requests per endpoint %v, pve1 dialed %d times", r, cl.net.dialCount(cl.addrs["pve1"]))
	}
}

func TestAllEndpointsDown(t *testing.T) {
	cl := newCluster(t)
	for _, a := range cl.addrs {
		cl.net.setRefuse(a, true)
	}
	c := cl.client(t, "pve1", "pve2", "pve3")
	_, err := c.Nodes(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Endpoint != "https://pve1.test:8006/api2/json/nodes" {
		t.Fatalf("want UnreachableError for the first endpoint, got %v", err)
	}
	for _, a := range cl.addrs {
		if n := cl.net.dialCount(a); n != 1 {
			t.Errorf("%s dialed %d times, want 1", a, n)
		}
	}
}

// TestCertMismatchFallback: an endpoint whose certificate is refused is
// skipped like an unreachable one, but when nothing answers, the refused
// certificate is what the error reports.
func TestCertMismatchFallback(t *testing.T) {
	cl := newCluster(t)
	wrong := Endpoint{URL: cl.srvs["pve1"].URL, Fingerprint: cl.srvs["pve2"].FP}
	cfg := testConfig(task.PVE, wrong, cl.srvs["pve2"].endpoint())
	cfg.DialContext = cl.net.DialContext
	c := newTestClient(t, cfg)
	if _, err := c.Nodes(context.Background()); err != nil {
		t.Fatalf("fallback past a refused certificate: %v", err)
	}

	cl.net.setRefuse(cl.addrs["pve2"], true)
	cfg.Endpoints = []Endpoint{cl.srvs["pve2"].endpoint(), wrong}
	c = newTestClient(t, cfg)
	_, err := c.Nodes(context.Background())
	var cm *CertMismatchError
	if !errors.As(err, &cm) || cm.Seen != cl.srvs["pve1"].FP || cm.Expected != cl.srvs["pve2"].FP {
		t.Fatalf("want the CertMismatchError of the second endpoint, got %v", err)
	}
}

// TestNodeAffinity: requests about a node go to that node's own endpoint,
// learned from /cluster/status; when that endpoint is down another node
// relays; when the node itself is down, the relay answers 595.
func TestNodeAffinity(t *testing.T) {
	cl := newCluster(t)
	c := cl.client(t, "pve1", "pve2", "pve3")
	ctx := context.Background()
	for _, n := range []string{"pve2", "pve3", "pve1", "pve2"} {
		if _, err := c.FetchTasks(ctx, n, since); err != nil {
			t.Fatal(err)
		}
	}
	// One discovery (a /cluster/status per endpoint), then each node's
	// tasks from its own endpoint: nothing relayed.
	if r := cl.requests(); r["pve1"] != 2 || r["pve2"] != 3 || r["pve3"] != 2 || cl.f.proxied != 0 {
		t.Errorf("requests per endpoint %v, %d relayed; want pve1 2, pve2 3, pve3 2, none relayed", r, cl.f.proxied)
	}
	st, err := c.TaskStatus(ctx, cl.f.running("pve3")[0])
	if err != nil || !st.Running {
		t.Fatalf("TaskStatus = %+v, %v", st, err)
	}
	if r := cl.requests(); r["pve3"] != 3 || cl.f.proxied != 0 {
		t.Errorf("task status went through %v (%d relayed)", r, cl.f.proxied)
	}
	got, err := c.Discover(ctx)
	want := map[string]string{"pve1": "https://pve1.test:8006", "pve2": "https://pve2.test:8006", "pve3": "https://pve3.test:8006"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("Discover = %v, %v; want %v", got, err, want)
	}

	// pve3's endpoint is unreachable from here, the node is fine: relayed.
	cl.net.setRefuse(cl.addrs["pve3"], true)
	c.transport.CloseIdleConnections()
	if _, err := c.ListTasks(ctx, "pve3", ListQuery{}); err != nil {
		t.Fatal(err)
	}
	if cl.f.proxied != 1 {
		t.Errorf("%d requests relayed, want 1", cl.f.proxied)
	}
	// pve3 is down: the relaying node says so.
	cl.f.mu.Lock()
	cl.f.offline["pve3"] = true
	cl.f.mu.Unlock()
	_, err = c.ListTasks(ctx, "pve3", ListQuery{})
	var off *NodeOfflineError
	if !errors.As(err, &off) || off.Node != "pve3" || off.Reason != "Connection refused" {
		t.Fatalf("want NodeOfflineError for pve3, got %v", err)
	}
	t.Log(err)
}

// TestDiscoveryForbidden: a token without Sys.Audit on / gets 403 from
// /cluster/status; requests still work, relayed, and discovery is not
// retried for every request.
func TestDiscoveryForbidden(t *testing.T) {
	cl := newCluster(t)
	cl.f.authErr["/api2/json/cluster/status"] = 403
	c := cl.client(t, "pve1", "pve2", "pve3")
	for _, n := range []string{"pve2", "pve3", "pve2"} {
		if _, err := c.ListTasks(context.Background(), n, ListQuery{}); err != nil {
			t.Fatal(err)
		}
	}
	if r := cl.requests(); r["pve1"] != 4 || r["pve2"] != 1 || r["pve3"] != 1 || cl.f.proxied != 3 {
		t.Errorf("requests per endpoint %v, %d relayed; want pve1 4 (1 status, 3 lists), pve2 1, pve3 1, 3 relayed", r, cl.f.proxied)
	}
	_, err := c.Discover(context.Background())
	var ae *AuthError
	if !errors.As(err, &ae) || ae.StatusCode != 403 {
		t.Errorf("Discover: want AuthError 403, got %v", err)
	}
}

// TestPBSNode: a PBS remote is one node, "localhost"; task status goes
// there too although the UPID names the real host.
func TestPBSNode(t *testing.T) {
	f := newFakeRemote(task.PBS, "pbs1")
	fillNode(f, "pbs1", 1, 3)
	n := newMemNet()
	srv := startMem(t, n, "pbs1.test:8007", f.handler("pbs1"))
	cfg := testConfig(task.PBS, Endpoint{URL: "https://pbs1.test", Fingerprint: srv.FP})
	cfg.DialContext = n.DialContext
	c := newTestClient(t, cfg)
	ctx := context.Background()
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Name != "localhost" {
		t.Fatalf("Nodes = %v, %v", nodes, err)
	}
	page, err := c.ListTasks(ctx, "localhost", ListQuery{Running: true})
	if err != nil || len(page.Tasks) != 1 || !page.Tasks[0].Running() || page.Tasks[0].UPID.Node != "pbs1" {
		t.Fatalf("running tasks = %+v, %v", page.Tasks, err)
	}
	st, err := c.TaskStatus(ctx, page.Tasks[0].UPID)
	if err != nil || !st.Running || st.Node != "pbs1" {
		t.Fatalf("TaskStatus = %+v, %v", st, err)
	}
	// The worker id is escaped in the UPID (store1\x3avm-100): the path
	// must carry the backslash escaped.
	backup := f.add("pbs1", since, since+60, "backup", "store1:vm/100", "root@pam", "OK")
	st, err = c.TaskStatus(ctx, backup)
	if err != nil || st.Running || st.ExitStatus != "OK" || !strings.Contains(backup.String(), `\x3a`) {
		t.Fatalf("TaskStatus(%s) = %+v, %v", backup, st, err)
	}
	if _, err := c.ClusterTasks(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ClusterTasks on PBS: %v", err)
	}
	if _, err := c.TaskStatus(ctx, task.UPID{Kind: task.PVE, Node: "pve1"}); err == nil {
		t.Error("TaskStatus accepted a PVE upid on a PBS remote")
	}
	if d := c.cfg.MaxConns; d != DefaultMaxConnsPBS {
		t.Errorf("MaxConns default %d, want %d", d, DefaultMaxConnsPBS)
	}
}

// TestClusterTasks: one request lists every node's recent tasks.
func TestClusterTasks(t *testing.T) {
	cl := newCluster(t)
	c := cl.client(t, "pve1")
	ts, err := c.ClusterTasks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	running := 0
	for _, tk := range ts {
		perNode[tk.UPID.Node]++
		if tk.Running() {
			running++
		}
	}
	if len(perNode) != 3 || running != 3 {
		t.Errorf("cluster tasks per node %v, %d running", perNode, running)
	}
}

// TestTaskStatusUnknown: PVE's 400 for an unknown task is a ServerError
// with the parameter message.
func TestTaskStatusUnknown(t *testing.T) {
	cl := newCluster(t)
	c := cl.client(t, "pve1")
	u := cl.f.running("pve1")[0]
	u.PID++
	_, err := c.TaskStatus(context.Background(), u)
	var se *ServerError
	if !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.Message, "upid: no such task") {
		t.Fatalf("want ServerError 400 'no such task', got %v", err)
	}
}
