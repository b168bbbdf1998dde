package proxmox

import (
	"context"
	"fmt"
	"net/url"

	"github.com/taskfleet/taskfleet/task"
)

// TaskStatus is the state of one task as GET /nodes/{node}/tasks/{upid}/status
// reports it. The endpoint has no end time: a poller that sees a task stop
// lists the node to learn it.
type TaskStatus struct {
	UPID       task.UPID // the task asked about
	Node       string    // node field of the answer (PBS: the real host name)
	Running    bool      // status "running"
	ExitStatus string    // "OK", "WARNINGS: n", an error message, "unknown"; "" while running
}

// statusItem is the answer of the status endpoint.
type statusItem struct {
	UPID       *string `json:"upid"`
	Node       string  `json:"node"`
	Status     *string `json:"status"`
	ExitStatus *string `json:"exitstatus"`
}

// TaskStatus asks a task's node for its status: PVE
// GET /nodes/{upid.Node}/tasks/{upid}/status, PBS the same under node
// "localhost". The request goes to the node's own endpoint when known.
// An answer that says the task or its node does not exist is a
// *TaskGoneError.
func (c *Client) TaskStatus(ctx context.Context, upid task.UPID) (TaskStatus, error) {
	if upid.Kind != c.cfg.Kind {
		return TaskStatus{}, fmt.Errorf("task status: %s: upid %s is a %v upid", location(c.cfg.Remote, upid.Node, ""), upid, upid.Kind)
	}
	node := upid.Node
	if c.cfg.Kind == task.PBS {
		node = pbsNode
	}
	c.learnNode(ctx, node)
	path := "/api2/json/nodes/" + url.PathEscape(node) + "/tasks/" + url.PathEscape(upid.String()) + "/status"
	var st TaskStatus
	err := c.get(ctx, call{node: node, path: path}, func(b *body, _ string) error {
		dec := b.json()
		var item statusItem
		if _, err := decodeData(dec, &item); err != nil {
			return err
		}
		var err error
		st, err = parseStatus(item, upid)
		return err
	})
	if reason, ok := goneReason(err); ok {
		err = &TaskGoneError{Remote: c.cfg.Remote, UPID: upid, Reason: reason, Err: err}
	}
	if err != nil {
		return TaskStatus{}, fmt.Errorf("task status: %w", err)
	}
	return st, nil
}

// parseStatus checks the answer against the task asked about.
func parseStatus(it statusItem, want task.UPID) (TaskStatus, error) {
	if it.UPID != nil && *it.UPID != want.String() {
		return TaskStatus{}, &shapeError{reason: fmt.Sprintf("status is for upid %q, asked for %q", shorten(*it.UPID, 160), want.String()), offset: -1}
	}
	if it.Status == nil {
		return TaskStatus{}, &shapeError{reason: "no status", offset: -1}
	}
	st := TaskStatus{UPID: want, Node: it.Node}
	switch *it.Status {
	case "running":
		st.Running = true
	case "stopped":
		if it.ExitStatus != nil {
			st.ExitStatus = *it.ExitStatus
		}
	default:
		return TaskStatus{}, &shapeError{reason: fmt.Sprintf("status %q: want running or stopped", shorten(*it.Status, 80)), offset: -1}
	}
	return st, nil
}
