package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// LogBackend is implemented by a Backend that serves task logs
// (GET /api2/json/remotes/tasks/log); without it the endpoint answers 501.
type LogBackend interface {
	// TaskLog returns lines [start, start+limit) of a task's log (limit
	// 0: all that are kept) and the number of lines the log has. The log
	// comes from the remote through its poller, or from the cache for a
	// failed task the remote no longer has. Errors wrap ErrUnknownRemote,
	// ErrNoSuchTask, ErrNotReady, or else are the remote's failure.
	TaskLog(ctx context.Context, remote string, upid task.UPID, start, limit int) (TaskLog, error)
}

// ErrNoSuchTask is returned (wrapped) by LogBackend.TaskLog when neither
// the remote nor the cache has the task's log; the API answers 404.
var ErrNoSuchTask = errors.New("no such task")

// LogLine is a line of a task log, as PVE and PBS return it.
type LogLine struct {
	N int    `json:"n"` // line number, from 1
	T string `json:"t"` // text
}

// TaskLog is a page of a task log.
type TaskLog struct {
	Lines []LogLine
	Total int // lines in the whole log
	// Source is "remote" when the remote answered, "cache" when the log
	// was kept by taskfleet (a failed task the remote has forgotten).
	Source string
	// Active is whether the task was still running when the remote
	// answered.
	Active bool
}

// defaultLogLimit is PVE's and PBS's default page of a task log.
const defaultLogLimit = 50

// logEnvelope is the answer of the log endpoint: PVE's and PBS's, plus
// where the log came from.
type logEnvelope struct {
	Data   []LogLine `json:"data"`
	Total  int       `json:"total"`
	Active bool      `json:"active"` // the task was running when the remote answered
	Source string    `json:"source"` // "remote" or "cache"
}

// serveLog serves GET /api2/json/remotes/tasks/log.
func (s *server) serveLog(w http.ResponseWriter, r *http.Request, c *caller, p *params) {
	log, err := s.taskLog(r, c, p)
	if err != nil {
		writeError(w, asAPIError(err))
		return
	}
	if log.Lines == nil {
		log.Lines = []LogLine{}
	}
	writeJSON(w, http.StatusOK, logEnvelope{Data: log.Lines, Total: log.Total, Active: log.Active, Source: log.Source})
}

// taskLog reads the parameters and asks the backend.
func (s *server) taskLog(r *http.Request, c *caller, p *params) (TaskLog, error) {
	lb, ok := s.b.(LogBackend)
	if !ok {
		return TaskLog{}, errorf(http.StatusNotImplemented, "this server serves no task logs")
	}
	remote, upid := taskRef(p)
	start := toInt(p.integer("start", 0, 0))
	limit := toInt(p.integer("limit", defaultLogLimit, 0))
	if err := p.done(); err != nil {
		return TaskLog{}, err
	}
	if err := s.checkRemote(r.Context(), c, remote); err != nil {
		return TaskLog{}, err
	}
	log, err := lb.TaskLog(r.Context(), remote, upid, start, limit)
	switch {
	case errors.Is(err, ErrUnknownRemote):
		return TaskLog{}, unknownRemote(remote)
	case errors.Is(err, ErrNoSuchTask):
		return TaskLog{}, errorf(http.StatusNotFound, "no log of task '%s': the remote does not have it and it was not kept", clip(upid.String()))
	case errors.Is(err, ErrNotReady):
		return TaskLog{}, errorf(http.StatusServiceUnavailable, "not ready: the service is starting")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return TaskLog{}, errorf(http.StatusServiceUnavailable, "request cancelled")
	case err != nil:
		// The remote's failure: the client must see which and why. The
		// proxmox client's errors never carry secrets.
		return TaskLog{}, errorf(http.StatusBadGateway, "fetch the log from remote '%s': %v", remote, err)
	}
	return log, nil
}

// taskRef reads the remote and upid parameters: upid is a task's UPID of
// remote, or a remote UPID ("pve:REMOTE!UPID:...") that names its remote.
func taskRef(p *params) (remote string, upid task.UPID) {
	remote = p.str("remote")
	text, given := p.single("upid")
	switch {
	case !given:
		if _, bad := p.errs["upid"]; !bad {
			p.fail("upid", "property is missing and it is not optional")
		}
	case strings.HasPrefix(text, "UPID:"):
		u, err := task.ParseUPID(text)
		if err != nil {
			p.fail("upid", "%v", err)
		}
		upid = u
	default:
		ru, err := task.ParseRemoteUPID(text)
		switch {
		case err != nil:
			p.fail("upid", "%v", err)
		case remote != "" && ru.Remote != remote:
			p.fail("upid", "the upid's remote '%s' is not the remote parameter '%s'", ru.Remote, clip(remote))
		default:
			remote, upid = ru.Remote, ru.UPID
		}
	}
	if remote == "" {
		if _, bad := p.errs["upid"]; !bad || !given {
			p.fail("remote", "property is missing and it is not optional (or give the upid as pve:REMOTE!UPID:...)")
		}
	} else if err := task.ValidateRemoteID(remote); err != nil {
		p.fail("remote", "%v", err)
	}
	return remote, upid
}
