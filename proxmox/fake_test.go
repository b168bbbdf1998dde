package proxmox

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/taskfleet/taskfleet/task"
)

// fakeRemote is a small model of a PVE cluster or a PBS server, with the
// task-list semantics that make paging hard: running (active) tasks first
// in active-file order, then finished ones newest-finished first; a task
// that finishes leaves the active part and goes to the top of the archive;
// start/limit paging with PVE's or PBS's rules; inclusive since.
type fakeRemote struct {
	kind   task.Kind
	header string // the Authorization value it accepts

	mu      sync.Mutex
	nodes   []*fakeNode
	offline map[string]bool // nodes that cannot be proxied to (595)
	pid     uint32
	lists   int            // list requests served
	byLocal map[string]int // requests per endpoint (by the node serving it)
	proxied int            // node requests served by another node's endpoint
	authErr map[string]int // path prefix -> status to refuse it with (e.g. /cluster/status 403)

	ignoreStart bool                       // answer every page as if start were 0
	mangle      func(item map[string]any)  // changes list items before they are sent
	beforeList  func(f *fakeRemote, n int) // runs before the n-th list request (1-based), lock not held
}

type fakeNode struct {
	name    string
	active  []*fakeTask // active file, in order of start
	archive []*fakeTask // index file, in order of finish; listed backwards
}

type fakeTask struct {
	upid   task.UPID
	end    int64 // 0 while running
	status string
}

func newFakeRemote(kind task.Kind, nodes ...string) *fakeRemote {
	f := &fakeRemote{
		kind:    kind,
		header:  string(authHeader(kind == task.PBS, testTokenID, testSecret)),
		offline: map[string]bool{},
		byLocal: map[string]int{},
		authErr: map[string]int{},
		pid:     0x1000,
	}
	for _, n := range nodes {
		f.nodes = append(f.nodes, &fakeNode{name: n})
	}
	return f
}

// node returns a node by name; "localhost" is the PBS server's node.
func (f *fakeRemote) node(name string) *fakeNode {
	if f.kind == task.PBS && name == pbsNode {
		return f.nodes[0]
	}
	for _, n := range f.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// add creates a task on node that started at start; end 0 leaves it running.
func (f *fakeRemote) add(node string, start, end int64, typ, id, user, status string) task.UPID {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pid++
	u := task.UPID{Kind: f.kind, Node: node, PID: f.pid, PStart: uint64(f.pid) * 7, StartTime: start, Type: typ, ID: id, User: user}
	if f.kind == task.PBS {
		u.TaskID = uint64(f.pid)
	}
	n := f.node(node)
	t := &fakeTask{upid: u, end: end, status: status}
	if end == 0 {
		n.active = append(n.active, t)
	} else {
		n.archive = append(n.archive, t)
	}
	return u
}

// finish ends a running task: it leaves the active part and becomes the
// newest finished task.
func (f *fakeRemote) finish(u task.UPID, end int64, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.node(u.Node)
	for i, t := range n.active {
		if t.upid == u {
			n.active = slices.Delete(n.active, i, i+1)
			t.end, t.status = end, status
			n.archive = append(n.archive, t)
			return
		}
	}
}

// running returns the running tasks of node in active-file order.
func (f *fakeRemote) running(node string) []task.UPID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []task.UPID
	for _, t := range f.node(node).active {
		out = append(out, t.upid)
	}
	return out
}

// want returns the tasks of node started at or after since, as the client
// should report them.
func (f *fakeRemote) want(node string, since int64) map[string]task.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]task.Task{}
	n := f.node(node)
	for _, t := range append(slices.Clone(n.active), n.archive...) {
		if t.upid.StartTime >= since {
			out[t.upid.String()] = task.Task{Remote: "east", UPID: t.upid, EndTime: t.end, Status: t.status}
		}
	}
	return out
}

// handler serves the API as the node named local (for PBS: any name).
func (f *fakeRemote) handler(local string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api2/json/nodes", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var items []map[string]any
		for _, n := range f.nodes {
			st := "online"
			if f.offline[n.name] {
				st = "offline"
			}
			items = append(items, map[string]any{"node": n.name, "status": st, "type": "node", "id": "node/" + n.name})
		}
		f.mu.Unlock()
		writeJSON(w, r, map[string]any{"data": items})
	})
	mux.HandleFunc("GET /api2/json/cluster/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		items := []map[string]any{{"type": "cluster", "name": "c1", "id": "cluster", "quorate": 1, "nodes": len(f.nodes)}}
		for i, n := range f.nodes {
			items = append(items, map[string]any{"type": "node", "name": n.name, "id": "node/" + n.name, "nodeid": i + 1,
				"online": b2i(!f.offline[n.name]), "local": b2i(n.name == local), "ip": "10.0.0." + strconv.Itoa(i+1)})
		}
		f.mu.Unlock()
		writeJSON(w, r, map[string]any{"data": items})
	})
	mux.HandleFunc("GET /api2/json/cluster/tasks", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var items []map[string]any
		for _, n := range f.nodes {
			for i, t := range f.listed(n, "all", 0, 0) {
				if i >= 25 && t.end != 0 {
					break
				}
				items = append(items, f.item(t, false))
			}
		}
		f.mu.Unlock()
		writeJSON(w, r, map[string]any{"data": items})
	})
	mux.HandleFunc("GET /api2/json/nodes/{node}/tasks", func(w http.ResponseWriter, r *http.Request) {
		if !f.reachNode(w, r, local) {
			return
		}
		f.mu.Lock()
		f.lists++
		n, hook := f.lists, f.beforeList
		f.mu.Unlock()
		if hook != nil {
			hook(f, n)
		}
		f.mu.Lock()
		body := f.list(f.node(r.PathValue("node")), r)
		f.mu.Unlock()
		writeJSON(w, r, body)
	})
	mux.HandleFunc("GET /api2/json/nodes/{node}/tasks/{upid}/status", func(w http.ResponseWriter, r *http.Request) {
		if !f.reachNode(w, r, local) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, t := range append(slices.Clone(f.node(r.PathValue("node")).active), f.node(r.PathValue("node")).archive...) {
			if t.upid.String() == r.PathValue("upid") {
				d := map[string]any{"upid": t.upid.String(), "node": t.upid.Node, "pid": t.upid.PID, "type": t.upid.Type,
					"starttime": t.upid.StartTime, "user": t.upid.User, "status": "running"}
				if t.end != 0 {
					d["status"], d["exitstatus"] = "stopped", t.status
				}
				writeJSON(w, r, map[string]any{"data": d})
				return
			}
		}
		rawResponse(w, 400, "Parameter verification failed.", "application/json", `{"data":null,"errors":{"upid":"no such task"}}`, -1)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.byLocal[local]++
		refuse := 0
		for prefix, code := range f.authErr {
			if strings.HasPrefix(r.URL.Path, prefix) {
				refuse = code
			}
		}
		f.mu.Unlock()
		switch {
		case r.Header.Get("Authorization") != f.header && f.kind == task.PBS:
			rawResponse(w, 401, "Unauthorized", "application/json;charset=UTF-8", "authentication failed", -1)
		case r.Header.Get("Authorization") != f.header:
			rawResponse(w, 401, "Authentication failed!", "", "", -1)
		case refuse != 0:
			rawResponse(w, refuse, "Permission check failed", "application/json", `{"data":null}`, -1)
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// reachNode counts a proxied request and answers 595 for an offline node.
func (f *fakeRemote) reachNode(w http.ResponseWriter, r *http.Request, local string) bool {
	node := r.PathValue("node")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.node(node) == nil {
		rawResponse(w, 500, "hostname lookup '"+node+"' failed - failed to get address info for: "+node, "application/json", `{"data":null}`, -1)
		return false
	}
	if f.kind == task.PVE && node != local {
		f.proxied++
		if f.offline[node] {
			rawResponse(w, 595, "Connection refused", "", "", -1)
			return false
		}
	}
	return true
}

// listed returns node's tasks in list order for source, filtered by since
// and until. Caller holds f.mu.
func (f *fakeRemote) listed(n *fakeNode, source string, since, until int64) []*fakeTask {
	var out []*fakeTask
	keep := func(t *fakeTask) bool {
		return t.upid.StartTime >= since && (until == 0 || t.upid.StartTime <= until)
	}
	if source == "active" || source == "all" {
		for _, t := range n.active {
			if keep(t) {
				out = append(out, t)
			}
		}
	}
	if source == "archive" || source == "all" {
		for i := len(n.archive) - 1; i >= 0; i-- {
			t := n.archive[i]
			if f.kind == task.PBS && since > 0 && t.end < since {
				break // PBS stops at the first archived task that ended before since
			}
			if keep(t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// list answers GET /nodes/{node}/tasks. Caller holds f.mu.
func (f *fakeRemote) list(n *fakeNode, r *http.Request) map[string]any {
	q := r.URL.Query()
	num := func(k string, def int) int {
		if v, err := strconv.Atoi(q.Get(k)); err == nil {
			return v
		}
		return def
	}
	source := q.Get("source")
	if source == "" {
		source = "archive"
	}
	if f.kind == task.PBS {
		source = "all"
		if q.Get("running") == "1" {
			source = "active"
		}
	}
	all := f.listed(n, source, int64(num("since", 0)), int64(num("until", 0)))
	start, limit := num("start", 0), num("limit", 50)
	if f.ignoreStart {
		start = 0
	}
	end := min(len(all), start+limit)
	if f.kind == task.PBS && limit == 0 {
		end = len(all)
	}
	page := []map[string]any{}
	for i := start; i < end; i++ {
		it := f.item(all[i], true)
		if f.mangle != nil {
			f.mangle(it)
		}
		page = append(page, it)
	}
	total := len(all)
	if f.kind == task.PBS {
		total = start + len(page)
		if limit > 0 && len(page) == limit {
			total++
		}
	}
	return map[string]any{"data": page, "total": total}
}

// item renders a task as a list item of the product, with Perl's habit of
// quoting some numbers and PVE's token split for archived tasks.
func (f *fakeRemote) item(t *fakeTask, perl bool) map[string]any {
	u := t.upid
	if f.kind == task.PBS {
		m := map[string]any{"upid": u.String(), "node": pbsNode, "pid": u.PID, "pstart": u.PStart, "starttime": u.StartTime,
			"worker_type": u.Type, "worker_id": nil, "user": u.User}
		if u.ID != "" {
			m["worker_id"] = u.ID
		}
		if t.end != 0 {
			m["endtime"], m["status"] = t.end, t.status
		}
		return m
	}
	m := map[string]any{"upid": u.String(), "node": u.Node, "pid": u.PID, "pstart": u.PStart, "starttime": u.StartTime,
		"type": u.Type, "id": u.ID, "user": u.User}
	if perl && u.PID%3 == 0 {
		m["pid"] = strconv.FormatUint(uint64(u.PID), 10)
		m["starttime"] = strconv.FormatInt(u.StartTime, 10)
	}
	if t.end == 0 {
		m["status"], m["saved"] = "RUNNING", "0"
		return m
	}
	m["endtime"], m["status"] = t.end, t.status
	if tok := u.TokenName(); tok != "" {
		m["user"], m["tokenid"] = u.Owner(), tok
	}
	return m
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gzipWriters saves the compressor state a gzip.Writer allocates and clears
// per response; Huffman-only keeps that state small (the race detector
// makes clearing large tables slow).
var gzipWriters = sync.Pool{New: func() any {
	zw, err := gzip.NewWriterLevel(nil, gzip.HuffmanOnly)
	if err != nil {
		panic(err)
	}
	return zw
}}

// writeJSON writes v, gzip-compressed when over 1 KiB and accepted, as
// pveproxy does.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	if len(body) > 1024 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var b bytes.Buffer
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		gzipWriters.Put(zw)
		w.Header().Set("Content-Encoding", "gzip")
		body = b.Bytes()
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
