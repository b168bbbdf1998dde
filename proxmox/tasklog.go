package proxmox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// ErrNoTaskLog is returned (wrapped) by TaskLog when the remote has no log
// of the task (it rotated it away, or never ran it).
var ErrNoTaskLog = errors.New("the remote has no log of this task")

// MaxTaskLogLines bounds the lines TaskLog returns (a limit of 0 asks for
// all of them).
const MaxTaskLogLines = 5000

// TaskLogLine is a line of a task log: its number (from 1) and text.
type TaskLogLine struct {
	N int    `json:"n"`
	T string `json:"t"`
}

// TaskLog is a page of a task log.
type TaskLog struct {
	Lines []TaskLogLine
	Total int // lines of the whole log; -1 when the remote did not say
}

// pveNoLog is the one line PVE answers for a log file it cannot open.
const pveNoLog = "unable to open file - "

// TaskLog reads lines [start, start+limit) of a task's log (limit 0: all,
// at most MaxTaskLogLines): PVE GET /nodes/{upid.Node}/tasks/{upid}/log,
// PBS the same under node "localhost". A log the remote does not have is
// an error wrapping ErrNoTaskLog (PVE answers it as one line "unable to
// open file - ...", PBS with an error).
func (c *Client) TaskLog(ctx context.Context, upid task.UPID, start, limit int) (TaskLog, error) {
	if upid.Kind != c.cfg.Kind {
		return TaskLog{}, fmt.Errorf("task log: %s: upid %s is a %v upid", location(c.cfg.Remote, upid.Node, ""), upid, upid.Kind)
	}
	if start < 0 || limit < 0 {
		return TaskLog{}, fmt.Errorf("task log: negative start %d or limit %d", start, limit)
	}
	if limit == 0 || limit > MaxTaskLogLines {
		limit = MaxTaskLogLines
	}
	node := upid.Node
	if c.cfg.Kind == task.PBS {
		node = pbsNode
	}
	c.learnNode(ctx, node)
	q := url.Values{"start": {strconv.Itoa(start)}, "limit": {strconv.Itoa(limit)}}
	path := "/api2/json/nodes/" + url.PathEscape(node) + "/tasks/" + url.PathEscape(upid.String()) + "/log"
	var log TaskLog
	err := c.get(ctx, call{node: node, path: path, query: q}, func(b *body, _ string) error {
		dec := b.json()
		var lines []TaskLogLine
		total, err := decodeData(dec, &lines)
		if err != nil {
			return err
		}
		if len(lines) > limit {
			return &shapeError{reason: fmt.Sprintf("%d log lines, asked for at most %d", len(lines), limit), offset: -1}
		}
		log = TaskLog{Lines: lines, Total: total}
		return nil
	})
	var se *ServerError
	switch {
	case errors.As(err, &se) && c.cfg.Kind == task.PBS && se.StatusCode == http.StatusBadRequest && strings.Contains(se.Message, "No such file"):
		return TaskLog{}, fmt.Errorf("task log of %s: %w", upid, ErrNoTaskLog)
	case err != nil:
		return TaskLog{}, fmt.Errorf("task log: %w", err)
	}
	if c.cfg.Kind == task.PVE && log.Total == 1 && len(log.Lines) == 1 && strings.HasPrefix(log.Lines[0].T, pveNoLog) {
		return TaskLog{}, fmt.Errorf("task log of %s: %w", upid, ErrNoTaskLog)
	}
	return log, nil
}
