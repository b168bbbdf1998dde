package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// pveTaskItem is an item of a PVE task list (and of /cluster/tasks), with
// the field names and JSON types of pve/responses/*.
type pveTaskItem struct {
	UPID      string `json:"upid"`
	Node      string `json:"node"`
	PID       uint32 `json:"pid"`
	PStart    uint64 `json:"pstart"`
	StartTime int64  `json:"starttime"`
	Type      string `json:"type"`
	ID        string `json:"id"`
	User      string `json:"user"`
	TokenID   string `json:"tokenid,omitempty"`
	EndTime   int64  `json:"endtime,omitempty"`
	Status    string `json:"status,omitempty"`
	Saved     string `json:"saved,omitempty"` // "0"/"1", a string: read from the active file
}

// pveTaskStatus is the answer of GET /nodes/{node}/tasks/{upid}/status.
type pveTaskStatus struct {
	UPID       string `json:"upid"`
	Node       string `json:"node"`
	PID        uint32 `json:"pid"`
	PStart     uint64 `json:"pstart"`
	StartTime  int64  `json:"starttime"`
	Type       string `json:"type"`
	ID         string `json:"id"`
	User       string `json:"user"`
	TokenID    string `json:"tokenid,omitempty"`
	Status     string `json:"status"`
	ExitStatus string `json:"exitstatus,omitempty"`
}

// routePVE answers an authenticated PVE API request.
func (s *nodeServer) routePVE(r *http.Request, segs []string, fl Fault) reply {
	if r.Method != http.MethodGet {
		return s.notFound(r)
	}
	if isLogPath(segs) {
		target, rep, ok := s.pveTarget(segs[1])
		if !ok {
			return rep
		}
		return s.taskLog(r, target, segs[3])
	}
	switch classify(segs) {
	case epNodeList:
		if errs := newParamReader(r.URL.Query(), false).errs; len(errs) > 0 {
			return s.paramError(errs)
		}
		return s.pveNodes()
	case epClusterStatus:
		if fl.NoAudit {
			return auditDenied()
		}
		return s.pveClusterStatus()
	case epClusterTasks:
		return s.pveClusterTasks(fl)
	case epClusterResources:
		if fl.NoAudit {
			// PVE filters the list by the caller's privileges: nothing.
			return jsonReply([]any{}, -1, 0)
		}
		return s.pveResources(r)
	case epTaskList, epTaskStatus:
		target, rep, ok := s.pveTarget(segs[1])
		if !ok {
			return rep
		}
		if len(segs) == 3 {
			return s.pveTasks(r, target, fl)
		}
		return s.pveTaskStatus(target, segs[3])
	}
	if isPermissions(segs) {
		return s.permissions(r, fl)
	}
	if len(segs) == 1 && segs[0] == "version" {
		return jsonReply(map[string]string{"version": "8.3.2", "release": "8.3", "repoid": "3e76eec21c4a14a7"}, -1, 0)
	}
	return s.notFound(r)
}

var nodeNamePattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`)

// pveTarget resolves the {node} of a path: this node, or another node of
// the cluster this one proxies to.
func (s *nodeServer) pveTarget(name string) (*node, reply, bool) {
	if name == "localhost" || name == s.n.name {
		return s.n, reply{}, true
	}
	if !nodeNamePattern.MatchString(name) {
		return nil, s.paramError(map[string]string{"node": "invalid format - value does not look like a valid node name"}), false
	}
	_, n := s.f.lookup(s.n.remote.id, name)
	if n == nil {
		return nil, pveError(http.StatusInternalServerError, "hostname lookup '"+name+"' failed - failed to get address info for: "+name+": Name or service not known", nil), false
	}
	if !n.online() {
		return nil, reply{status: 595, reason: "Connection refused"}, false
	}
	return n, reply{}, true
}

var warningsPattern = regexp.MustCompile(`^WARNINGS: [0-9]+$`)

// pveClass classifies a status as pve-common's upid_normalize_status_type.
func pveClass(status string) task.StatusClass {
	switch {
	case status == "" || status == "unexpected status":
		return task.StatusUnknown
	case status == "OK":
		return task.StatusOK
	case warningsPattern.MatchString(status):
		return task.StatusWarning
	}
	return task.StatusError
}

// pveTasks answers GET /nodes/{node}/tasks like PVE::API2::Tasks:
// running tasks first (source active|all), then the index newest
// finished first (archive|all); filters, then start/limit paging; total
// counts every match; limit=0 returns nothing.
func (s *nodeServer) pveTasks(r *http.Request, n *node, fl Fault) reply {
	lq, errs := parsePVEList(r.URL.Query())
	if len(errs) > 0 {
		return s.paramError(errs)
	}
	a := n.act
	now := s.f.now()
	a.mu.Lock()
	a.advance(now)
	key := r.URL.RawQuery
	if fl.NoAudit {
		key = "noaudit;" + key // the same query hides other users' tasks
	}
	if !fl.BadItems {
		if rep, ok := a.listCache.get(key, a.version); ok {
			a.mu.Unlock()
			return rep
		}
	}
	var items []any
	count := 0
	visit := func(rp *rec, running bool) {
		if hiddenTask(fl, rp) {
			return
		}
		full := a.userName(rp)
		user, tokenID := full, ""
		status := ""
		if !running {
			// Archived token tasks are split into user and tokenid;
			// active ones keep the full user.
			if owner, name, ok := strings.Cut(full, "!"); ok {
				user, tokenID = owner, name
			}
			status = statuses[rp.status]
		}
		if lq.userFilter != "" && !strings.Contains(strings.ToLower(user), strings.ToLower(lq.userFilter)) {
			return
		}
		typ := a.typeName(rp)
		if lq.typeFilter != "" && typ != lq.typeFilter {
			return
		}
		id := a.ids[rp.id]
		if lq.vmid != "" && id != lq.vmid {
			return
		}
		start := a.clock.stamp(int64(rp.start))
		if lq.hasSince && start < lq.since || lq.hasUntil && start > lq.until {
			return
		}
		// The class is taken before RUNNING is filled in: running tasks
		// are "unknown" to the filters.
		cls := pveClass(status)
		if lq.errors && cls == task.StatusOK || !lq.errors && lq.hasStatusFilt && !lq.statusFilter.Has(cls) {
			return
		}
		if count >= lq.start && count < lq.start+lq.limit {
			u := a.upid(rp)
			it := pveTaskItem{
				UPID: u.String(), Node: n.name, PID: u.PID, PStart: u.PStart, StartTime: u.StartTime,
				Type: typ, ID: id, User: user, TokenID: tokenID, Status: status,
			}
			if running {
				it.Status, it.Saved = statusRunning, "0"
			} else {
				it.EndTime = a.endStamp(rp)
			}
			items = append(items, it)
		}
		count++
	}
	if lq.source != "archive" {
		for i := len(a.running) - 1; i >= 0; i-- {
			visit(&a.running[i], true)
		}
	}
	if lq.source != "active" {
		for k := range a.index.len() {
			visit(a.index.newest(k), false)
		}
	}
	served := len(items)
	if fl.BadItems {
		a.mu.Unlock()
		return jsonReply(append(badPVEItems(n.name, now), items...), count, served)
	}
	if items == nil {
		items = []any{}
	}
	rep := jsonReply(items, count, served)
	if rep.status == http.StatusOK {
		rep = a.listCache.put(key, a.version, rep)
	}
	a.mu.Unlock()
	return rep
}

// badPVEItems are the items of the BadItems fault: an invalid upid, and a
// valid one (of no real task) without starttime.
func badPVEItems(node string, now int64) []any {
	bad := task.UPID{Kind: task.PVE, Node: node, PID: 1, PStart: 1, StartTime: now, Type: "qmstart", ID: "100", User: "root@pam"}
	return []any{
		map[string]any{"upid": "UPID:" + node + ":not-a-upid", "node": node, "pid": 1, "pstart": 1, "starttime": now, "type": "qmstart", "id": "100", "user": "root@pam", "endtime": now, "status": "OK"},
		map[string]any{"upid": bad.String(), "node": node, "pid": 1, "pstart": 1, "type": "qmstart", "id": "100", "user": "root@pam", "endtime": now, "status": "OK"},
	}
}

// pveTaskStatus answers GET /nodes/{node}/tasks/{upid}/status.
func (s *nodeServer) pveTaskStatus(n *node, upid string) reply {
	u, err := task.ParsePVE(upid)
	if err != nil {
		return s.paramError(map[string]string{"upid": "unable to parse worker upid"})
	}
	a := n.act
	now := s.f.now()
	a.mu.Lock()
	a.advance(now)
	var rp rec
	found := u.Node == n.name
	if found {
		rp, found = a.find(u)
	}
	frontier := a.frontier
	a.mu.Unlock()
	if !found {
		return s.paramError(map[string]string{"upid": "no such task"})
	}
	st := pveTaskStatus{
		UPID: upid, Node: u.Node, PID: u.PID, PStart: u.PStart, StartTime: u.StartTime,
		Type: u.Type, ID: u.ID, User: u.User, Status: "running",
	}
	if owner, name, ok := strings.Cut(u.User, "!"); ok {
		st.User, st.TokenID = owner, name
	}
	if rp.end() <= frontier {
		st.Status, st.ExitStatus = "stopped", statuses[rp.status]
	}
	return jsonReply(st, -1, 0)
}

// Each PVE node broadcasts its recent tasks to the cluster (pve-common
// RESTEnvironment active_workers and PVE::Cluster::broadcast_tasklist):
// all running tasks, topped up with the most recently finished ones to
// clusterTasksPerNode entries, then cut from the end until the list's JSON
// is shorter than clusterTasksMaxBytes. GET /cluster/tasks returns the
// lists of all nodes (see ../shared/docs/proxmox-api.md), less the tasks
// the caller may not see (the NoAudit fault: audit.go).
const (
	clusterTasksPerNode  = 25
	clusterTasksMaxBytes = 32 << 10
)

// pveClusterTasks answers GET /cluster/tasks: per online node its
// broadcast list. The answer is kept while no node changed (and the
// NoAudit fault did not change).
func (s *nodeServer) pveClusterTasks(fl Fault) reply {
	now := s.f.now()
	nodes := s.f.nodesOf(s.n.remote)
	parts := make([][]byte, 0, len(nodes))
	var key strings.Builder
	if fl.NoAudit {
		key.WriteString("noaudit;") // a different answer from the same versions
	}
	for _, n := range nodes {
		if !n.online() {
			continue
		}
		part, version := n.act.clusterTasks(n.name, now, fl)
		parts = append(parts, part)
		fmt.Fprintf(&key, "%d:%d,", n.num, version)
	}
	rm := s.n.remote
	rm.clusterMu.Lock()
	defer rm.clusterMu.Unlock()
	if rep, ok := rm.clusterCache.get(key.String(), 0); ok {
		return rep
	}
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	items := 0
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if items > 0 {
			b.WriteByte(',')
		}
		b.Write(p)
		items += bytes.Count(p, []byte(`{"upid"`))
	}
	b.WriteString(`]}`)
	return rm.clusterCache.put(key.String(), 0, reply{status: http.StatusOK, body: b.Bytes(), items: items, cluster: true})
}

// clusterTasks returns the node's broadcast task list as JSON items
// separated by commas (without the brackets), and the activity's version
// it reflects. With the NoAudit fault the tasks the token did not start
// are left out of the list after it was cut (the cut is the node's, the
// filter the API's); only the unfiltered list is kept.
func (a *activity) clusterTasks(name string, now int64, fl Fault) ([]byte, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	if !fl.NoAudit && a.clusterVer == a.version && a.clusterPart != nil {
		return a.clusterPart, a.version
	}
	var b bytes.Buffer
	size := 2 // the brackets of the node's own list
	count := 0
	add := func(rp *rec, running bool) bool {
		u := a.upid(rp)
		it := pveTaskItem{
			UPID: u.String(), Node: name, PID: u.PID, PStart: u.PStart, StartTime: u.StartTime,
			Type: u.Type, ID: u.ID, User: u.User, Saved: "1",
		}
		if owner, tok, ok := strings.Cut(u.User, "!"); ok {
			it.User, it.TokenID = owner, tok
		}
		if running {
			it.Saved = "0"
		} else {
			it.EndTime, it.Status = a.endStamp(rp), statuses[rp.status]
		}
		js, _ := json.Marshal(it)
		if size+len(js)+1 >= clusterTasksMaxBytes {
			return false
		}
		size += len(js) + 1
		if hiddenTask(fl, rp) {
			return true
		}
		if count > 0 {
			b.WriteByte(',')
		}
		b.Write(js)
		count++
		return true
	}
	full := false
	for i := len(a.running) - 1; i >= 0 && !full; i-- {
		full = !add(&a.running[i], true)
	}
	for k := 0; !full && k < a.index.len() && len(a.running)+k < clusterTasksPerNode; k++ {
		full = !add(a.index.newest(k), false)
	}
	part := append([]byte{}, b.Bytes()...)
	if !fl.NoAudit {
		a.clusterPart, a.clusterVer = part, a.version
	}
	return part, a.version
}

// pveNodes answers GET /nodes.
func (s *nodeServer) pveNodes() reply {
	now := s.f.now()
	items := []any{}
	for _, n := range s.f.nodesOf(s.n.remote) {
		items = append(items, n.nodeItem(now))
	}
	return jsonReply(items, -1, 0)
}

// nodeItem is the node as GET /nodes (and /cluster/resources) list it.
func (n *node) nodeItem(now int64) map[string]any {
	if !n.online() {
		return map[string]any{"id": "node/" + n.name, "node": n.name, "status": "offline", "type": "node"}
	}
	p := n.act.p
	hw := rand.New(rand.NewPCG(p.seed, 0x4877))
	load := rand.New(rand.NewPCG(p.seed, uint64(now/60)))
	maxcpu := 16 * (1 + hw.IntN(4))
	maxmem := int64(64+64*hw.IntN(8)) << 30
	maxdisk := int64(100+hw.IntN(400)) << 30
	return map[string]any{
		"node": n.name, "status": "online", "type": "node", "id": "node/" + n.name, "level": "",
		"cpu": 0.01 + 0.5*load.Float64(), "maxcpu": maxcpu,
		"mem": int64(float64(maxmem) * (0.3 + 0.5*load.Float64())), "maxmem": maxmem,
		"disk": int64(float64(maxdisk) * (0.1 + 0.5*hw.Float64())), "maxdisk": maxdisk,
		"uptime": now - p.boot(now), "ssl_fingerprint": n.fingerprint,
	}
}

// pveClusterStatus answers GET /cluster/status: the cluster and its nodes.
func (s *nodeServer) pveClusterStatus() reply {
	nodes := s.f.nodesOf(s.n.remote)
	online := 0
	var items []any
	for _, n := range nodes {
		up := 0
		if n.online() {
			up = 1
			online++
		}
		local := 0
		if n == s.n {
			local = 1
		}
		host, _, _ := net.SplitHostPort(n.address())
		items = append(items, map[string]any{
			"type": "node", "id": "node/" + n.name, "name": n.name, "ip": host,
			"level": "", "local": local, "nodeid": n.num, "online": up,
		})
	}
	quorate := 0
	if online*2 > len(nodes) {
		quorate = 1
	}
	cluster := map[string]any{"type": "cluster", "id": "cluster", "name": s.n.remote.id, "nodes": len(nodes), "quorate": quorate, "version": len(nodes) + 2}
	return jsonReply(append([]any{cluster}, items...), -1, 0)
}
