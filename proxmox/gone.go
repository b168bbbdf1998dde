package proxmox

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// Why a status request found no task.
const (
	GoneNoTask = "no such task" // the node has no log of the task (PVE 400 "upid: no such task")
	GoneNoNode = "no such node" // the cluster does not know the node (PVE 500 "hostname lookup 'X' failed")
)

// TaskGoneError means a status request was answered, and the answer says
// the task cannot be asked about: the node has no log of it, or the node is
// not (or no longer) part of the cluster. It is a fact about the task, not
// a failure of the remote: the remote answered.
type TaskGoneError struct {
	Remote string
	UPID   task.UPID
	Reason string // GoneNoTask or GoneNoNode
	Err    error  // the server's answer (*ServerError)
}

// Error describes the task and why it is gone.
func (e *TaskGoneError) Error() string {
	return fmt.Sprintf("%s: task %s: %s: %v", location(e.Remote, e.UPID.Node, ""), e.UPID, e.Reason, e.Err)
}

// Unwrap returns the server's answer.
func (e *TaskGoneError) Unwrap() error { return e.Err }

// goneReason tells whether a status answer says the task or its node does
// not exist: PVE answers 400 with "upid: no such task" for a task without a
// log, and 500 "hostname lookup 'X' failed" for a node outside the cluster
// (pveproxy cannot resolve it to proxy the request).
func goneReason(err error) (string, bool) {
	var se *ServerError
	if !errors.As(err, &se) {
		return "", false
	}
	msg := strings.ToLower(se.Message)
	switch {
	case se.StatusCode == http.StatusBadRequest && strings.Contains(msg, "no such task"):
		return GoneNoTask, true
	case se.StatusCode == http.StatusInternalServerError && strings.Contains(msg, "hostname lookup") && strings.Contains(msg, "failed"):
		return GoneNoNode, true
	}
	return "", false
}
