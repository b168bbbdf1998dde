package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/taskfleet/taskfleet/task"
)

// TaskListItem is one task of a list, with the JSON names of Proxmox
// Datacenter Manager's TaskListItem.
type TaskListItem struct {
	UPID       string  `json:"upid"` // remote-qualified: "pve:REMOTE!UPID:..."
	Node       string  `json:"node"`
	PID        int64   `json:"pid"`
	PStart     uint64  `json:"pstart"`
	StartTime  int64   `json:"starttime"`
	WorkerType string  `json:"worker_type"`
	WorkerID   *string `json:"worker_id"` // null when the task has none
	User       string  `json:"user"`
	EndTime    *int64  `json:"endtime,omitempty"` // only when finished
	Status     *string `json:"status,omitempty"`  // only when finished
}

// NewTaskListItem returns the list item of t.
func NewTaskListItem(t task.Task) TaskListItem {
	u := t.UPID
	item := TaskListItem{
		UPID:       t.RemoteUPID().String(),
		Node:       u.Node,
		PID:        int64(u.PID),
		PStart:     u.PStart,
		StartTime:  u.StartTime,
		WorkerType: u.Type,
		User:       u.User,
	}
	if u.ID != "" {
		id := u.ID
		item.WorkerID = &id
	}
	if !t.Running() {
		end, status := t.EndTime, t.Status
		item.EndTime, item.Status = &end, &status
	}
	return item
}

// list serves GET /api2/json/remotes/tasks/list, streamed (writeList),
// as JSON or CSV.
func (s *server) list(r *http.Request, c *caller, p *params) (reply, error) {
	format := listFormat(r, p)
	f, err := s.filter(r.Context(), p, c)
	if err != nil {
		return reply{}, err
	}
	total, tasks, err := s.listTasks(r.Context(), f)
	if err != nil {
		return reply{}, err
	}
	return reply{list: &taskList{total: total, tasks: tasks, format: format}}, nil
}

// statistics serves GET /api2/json/remotes/tasks/statistics.
func (s *server) statistics(r *http.Request, c *caller, p *params) (reply, error) {
	f, err := s.filter(r.Context(), p, c)
	if err != nil {
		return reply{}, err
	}
	st, err := s.b.Statistics(r.Context(), f)
	if err != nil {
		return reply{}, err
	}
	if st.ByType == nil {
		st.ByType = map[string]task.Counts{}
	}
	byRemote := make(map[string]task.Counts, len(st.ByRemote))
	for r, n := range st.ByRemote {
		if c.allows(r) {
			byRemote[r] = n
		}
	}
	st.ByRemote = byRemote
	return reply{data: st}, nil
}

// refresh serves POST /api2/json/remotes/tasks/refresh.
func (s *server) refresh(r *http.Request, c *caller, p *params) (reply, error) {
	var remotes []string
	for _, id := range p.list("remotes") {
		if err := task.ValidateRemoteID(id); err != nil {
			p.fail("remotes", "%v", err)
		} else if !slices.Contains(remotes, id) {
			remotes = append(remotes, id)
		}
	}
	wait := p.boolean("wait")
	if err := p.done(); err != nil {
		return reply{}, err
	}
	for _, id := range remotes {
		if err := s.checkRemote(r.Context(), c, id); err != nil {
			return reply{}, err
		}
	}
	if len(remotes) == 0 && c.scoped() {
		// "All" for a scoped token is all of its remotes, never Refresh()
		// without arguments, which would mean every remote.
		for _, id := range c.remotes() {
			if s.b.HasRemote(r.Context(), id) {
				remotes = append(remotes, id)
			}
		}
		if len(remotes) == 0 {
			return reply{data: []RefreshResult{}}, nil
		}
	}
	results, err := s.b.Refresh(r.Context(), wait, remotes...)
	if errors.Is(err, ErrUnknownRemote) {
		return reply{}, errorf(http.StatusNotFound, "%v", err)
	}
	if err != nil {
		return reply{}, err
	}
	if results == nil {
		results = []RefreshResult{}
	}
	return reply{data: results}, nil
}
