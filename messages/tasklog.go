package messages

import (
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// FetchTaskLog asks a remote's poller for lines [Start, Start+Limit) of a
// task's log (Limit 0: all, bounded by the client); answered with
// TaskLogFetched. The poller fetches it in the background with its
// connection budget and never blocks its mailbox.
type FetchTaskLog struct {
	UPID  task.UPID
	Start int
	Limit int
	// Background: a fetch for the backup overview, which has a slot of its
	// own, so that it never takes one of the API's.
	Background bool
}

// TaskLogFetched answers FetchTaskLog.
type TaskLogFetched struct {
	Log proxmox.TaskLog
	Err error
}
