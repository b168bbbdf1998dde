package sim

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// pbsTaskItem is an item of a PBS task list (pbs/responses/*): worker_type
// and worker_id instead of type and id, worker_id null when empty, node
// always "localhost", endtime and status omitted while running.
type pbsTaskItem struct {
	UPID       string  `json:"upid"`
	Node       string  `json:"node"`
	PID        uint32  `json:"pid"`
	PStart     uint64  `json:"pstart"`
	StartTime  int64   `json:"starttime"`
	WorkerType string  `json:"worker_type"`
	WorkerID   *string `json:"worker_id"`
	User       string  `json:"user"`
	EndTime    int64   `json:"endtime,omitempty"`
	Status     string  `json:"status,omitempty"`
}

// pbsTaskStatus is the answer of PBS's task status endpoint.
type pbsTaskStatus struct {
	UPID       string  `json:"upid"`
	Node       string  `json:"node"`
	PID        uint32  `json:"pid"`
	PStart     uint64  `json:"pstart"`
	StartTime  int64   `json:"starttime"`
	Type       string  `json:"type"`
	ID         *string `json:"id"`
	User       string  `json:"user"`
	TokenID    string  `json:"tokenid,omitempty"`
	Status     string  `json:"status"`
	ExitStatus string  `json:"exitstatus,omitempty"`
}

// routePBS answers an authenticated PBS API request. PBS ignores the
// {node} of the path (the UI says "localhost").
func (s *nodeServer) routePBS(r *http.Request, segs []string, fl Fault) reply {
	if r.Method != http.MethodGet {
		return reply{status: http.StatusMethodNotAllowed, body: []byte("Method not allowed.")}
	}
	if isLogPath(segs) {
		return s.taskLog(r, s.n, segs[3])
	}
	switch classify(segs) {
	case epTaskList:
		return s.pbsTasks(r, fl)
	case epTaskStatus:
		return s.pbsTaskStatus(segs[3])
	}
	if isPermissions(segs) {
		return s.permissions(r, fl)
	}
	if len(segs) == 1 && segs[0] == "version" {
		return jsonReply(map[string]string{"version": "3.2.4", "release": "3.2", "repoid": "4940514b0f05d6cd"}, -1, 0)
	}
	return s.notFound(r)
}

// pbsClass classifies a status as PBS's TaskState does.
func pbsClass(status string) task.StatusClass {
	switch {
	case status == "unknown":
		return task.StatusUnknown
	case status == "OK":
		return task.StatusOK
	case strings.HasPrefix(status, "WARNINGS: "):
		return task.StatusWarning
	}
	return task.StatusError
}

// pbsTasks answers GET /nodes/{node}/tasks like proxmox-backup's
// list_tasks: active tasks first, then the archive newest finished first;
// with since, listing stops at the first task that ended before it;
// limit 0 is unlimited; total = returned + start, plus one when the page
// is full.
func (s *nodeServer) pbsTasks(r *http.Request, fl Fault) reply {
	lq, errs := parsePBSList(r.URL.Query())
	if len(errs) > 0 {
		return s.paramError(errs)
	}
	limit := lq.limit
	if limit == 0 {
		limit = int(^uint(0) >> 1)
	}
	a := s.n.act
	now := s.f.now()
	a.mu.Lock()
	a.advance(now)
	items := []any{}
	skipped := 0
	// visit returns false to stop iterating.
	visit := func(rp *rec, running bool) bool {
		if hiddenTask(fl, rp) {
			return true
		}
		start := a.clock.stamp(int64(rp.start))
		if lq.hasUntil && start > lq.until {
			return true
		}
		if lq.hasSince {
			if !running && a.endStamp(rp) < lq.since {
				return false
			}
			if start < lq.since {
				return true
			}
		}
		user := a.userName(rp)
		if lq.userFilter != "" && !strings.Contains(user, lq.userFilter) {
			return true
		}
		typ, id := a.typeName(rp), a.ids[rp.id]
		if lq.store != "" && !jobStore(typ, id, lq.store) {
			return true
		}
		if lq.typeFilter != "" && !strings.Contains(typ, lq.typeFilter) {
			return true
		}
		status := statuses[rp.status]
		switch {
		case !running && lq.running:
			return true
		case !running && lq.errors && status == "OK":
			return true
		case lq.hasStatusFilt && (running || !lq.statusFilter.Has(pbsClass(status))):
			return true
		}
		if skipped < lq.start {
			skipped++
			return true
		}
		u := a.upid(rp)
		it := pbsTaskItem{UPID: u.String(), Node: "localhost", PID: u.PID, PStart: u.PStart, StartTime: start, WorkerType: typ, User: user}
		if id != "" {
			it.WorkerID = &id
		}
		if !running {
			it.EndTime, it.Status = a.endStamp(rp), status
		}
		items = append(items, it)
		return len(items) < limit
	}
	more := true
	for i := len(a.running) - 1; i >= 0 && more; i-- {
		more = visit(&a.running[i], true)
	}
	for k := 0; k < a.index.len() && more && !lq.running; k++ {
		more = visit(a.index.newest(k), false)
	}
	a.mu.Unlock()
	served := len(items)
	total := served + lq.start
	if served > 0 && served >= limit {
		total++ // PBS's "there may be more" marker
	}
	if fl.BadItems {
		items = append(badPBSItems(s.n.name, now), items...)
	}
	return jsonReply(items, total, served)
}

// badPBSItems are the items of the BadItems fault.
func badPBSItems(node string, now int64) []any {
	bad := task.UPID{Kind: task.PBS, Node: node, PID: 1, PStart: 1, TaskID: 1, StartTime: now, Type: "backup", ID: "store1:vm/100", User: "root@pam"}
	return []any{
		map[string]any{"upid": "UPID:" + node + ":not-a-upid", "node": "localhost", "pid": 1, "pstart": 1, "starttime": now, "worker_type": "backup", "worker_id": "store1:vm/100", "user": "root@pam", "endtime": now, "status": "OK"},
		map[string]any{"upid": bad.String(), "node": "localhost", "pid": 1, "pstart": 1, "worker_type": "backup", "worker_id": "store1:vm/100", "user": "root@pam", "endtime": now, "status": "OK"},
	}
}

var (
	verifyJobID = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9._\-]*):`)
	syncJobID   = regexp.MustCompile(`^([^:\s]+|-):([^:\s]+):([^:\s]+)(?::([^:\s]*))?:([^:\s]+)$`)
)

// jobStore reports whether a task belongs to a datastore, as PBS's
// check_job_store reads it from the worker id.
func jobStore(typ, id, store string) bool {
	if id == "" {
		return false
	}
	switch {
	case strings.HasPrefix(typ, "verif"):
		if m := verifyJobID.FindStringSubmatch(id); m != nil {
			return m[1] == store
		}
		return id == store
	case typ == "syncjob":
		if m := syncJobID.FindStringSubmatch(id); m != nil {
			return m[3] == store
		}
	case typ == "prune" || typ == "prunejob" || typ == "backup" || typ == "garbage_collection":
		return id == store || strings.HasPrefix(id, store+":")
	}
	return false
}

// pbsTaskStatus answers the task status endpoint. Like PBS, a well-formed
// UPID of a task it has no log of is "stopped" with status "unknown".
func (s *nodeServer) pbsTaskStatus(upid string) reply {
	u, err := task.ParsePBS(upid)
	if err != nil {
		return s.paramError(map[string]string{"upid": "value does not match the regex pattern"})
	}
	a := s.n.act
	now := s.f.now()
	a.mu.Lock()
	a.advance(now)
	rp, found := rec{}, u.Node == s.n.name
	if found {
		rp, found = a.find(u)
	}
	frontier := a.frontier
	a.mu.Unlock()
	st := pbsTaskStatus{UPID: upid, Node: u.Node, PID: u.PID, PStart: u.PStart, StartTime: u.StartTime, Type: u.Type, User: u.User, Status: "stopped", ExitStatus: "unknown"}
	if u.ID != "" {
		id := u.ID
		st.ID = &id
	}
	if owner, name, ok := strings.Cut(u.User, "!"); ok {
		st.User, st.TokenID = owner, name
	}
	if found {
		if rp.end() > frontier {
			st.Status, st.ExitStatus = "running", ""
		} else {
			st.ExitStatus = statuses[rp.status]
		}
	}
	return jsonReply(st, -1, 0)
}
