package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/taskfleet/taskfleet/task"
)

// ErrNotTracked is returned (wrapped) by Backend.Untrack for a task that
// is not tracked; the API answers 404.
var ErrNotTracked = errors.New("task not tracked")

// track serves POST /api2/json/remotes/tasks/track.
func (s *server) track(r *http.Request, c *caller, p *params) (reply, error) {
	remote, upid, aerr := s.trackTarget(r.Context(), c, p)
	if aerr != nil {
		return reply{}, aerr
	}
	err := s.b.Track(r.Context(), remote, upid)
	switch {
	case errors.Is(err, ErrUnknownRemote):
		return reply{}, unknownRemote(remote)
	case errors.Is(err, ErrInvalidTask):
		return reply{}, badParam("upid", "%v", err)
	case err != nil:
		return reply{}, err
	}
	return reply{data: task.RemoteUPID{Remote: remote, UPID: upid}.String()}, nil
}

// untrack serves DELETE /api2/json/remotes/tasks/track: the task is no
// longer polled (its state in the cache stays as the lists report it).
func (s *server) untrack(r *http.Request, c *caller, p *params) (reply, error) {
	remote, upid, aerr := s.trackTarget(r.Context(), c, p)
	if aerr != nil {
		return reply{}, aerr
	}
	err := s.b.Untrack(r.Context(), remote, upid)
	switch {
	case errors.Is(err, ErrUnknownRemote):
		return reply{}, unknownRemote(remote)
	case errors.Is(err, ErrNotTracked):
		return reply{}, errorf(http.StatusNotFound, "task '%s' is not tracked", task.RemoteUPID{Remote: remote, UPID: upid})
	case err != nil:
		return reply{}, err
	}
	return reply{data: nil}, nil
}

// trackTarget reads the parameters of track and untrack: upid, native or
// remote-qualified, and remote (optional when the upid names it). It
// answers 403 for a remote outside the caller's scope and 404 for one that
// is not configured.
func (s *server) trackTarget(ctx context.Context, c *caller, p *params) (string, task.UPID, *apiError) {
	remote, upid := taskRef(p) // logs.go
	if err := p.done(); err != nil {
		return "", task.UPID{}, err
	}
	if err := s.checkRemote(ctx, c, remote); err != nil {
		return "", task.UPID{}, err
	}
	return remote, upid, nil
}
