package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/backups"
	"github.com/taskfleet/taskfleet/task"
)

// PathBackups is the backup overview's endpoint; its answer's data is a
// BackupsAnswer.
const PathBackups = "/api2/json/remotes/backups"

// BackupBackend is implemented by a Backend that serves the backup
// overview (GET /api2/json/remotes/backups); without it the endpoint
// answers 501.
type BackupBackend interface {
	// Backups returns the latest backup overview without waiting; an
	// error wrapping ErrNotReady until the first one is built.
	Backups(ctx context.Context) (*backups.Overview, error)
}

// BackupsAnswer is the data of GET /api2/json/remotes/backups
// (PathBackups), for clients to decode.
type BackupsAnswer struct {
	Guests []backups.Row `json:"guests"`
	Jobs   []backups.Job `json:"jobs"`
	// PendingLogs counts, per remote, the multi-guest vzdump jobs whose
	// logs are not parsed yet (their guests' outcomes are missing).
	PendingLogs map[string]int `json:"pending_logs"`
	Built       int64          `json:"built"` // Unix time the overview was computed
	Now         int64          `json:"now"`   // Unix time the ages were computed at
}

// backups serves GET /api2/json/remotes/backups: one row per guest, and
// per PBS datastore job its last run, failing and stale first.
// Parameters: remote, status (classes ok, warning, error, unknown, none;
// a list), older_than (a Go duration such as 26h, or seconds).
func (s *server) backups(r *http.Request, c *caller, p *params) (reply, error) {
	bb, ok := s.b.(BackupBackend)
	if !ok {
		return reply{}, errorf(http.StatusNotImplemented, "this server serves no backup overview")
	}
	q := backups.Query{Remote: p.str("remote"), Scope: c.scope}
	if q.Remote != "" {
		if err := task.ValidateRemoteID(q.Remote); err != nil {
			p.fail("remote", "%v", err)
		}
	}
	for _, v := range p.list("status") {
		class, ok := backups.ParseClass(v)
		if !ok {
			p.fail("status", "value '%s' does not have a value in the enumeration '%s'", clip(v), strings.Join(backups.Classes, ", "))
			continue
		}
		q.Classes = append(q.Classes, class)
	}
	if v, ok := p.single("older_than"); ok {
		d, err := parseAge(v)
		if err != nil {
			p.fail("older_than", "%v", err)
		}
		q.OlderThan = d
	}
	if err := p.done(); err != nil {
		return reply{}, err
	}
	if q.Remote != "" {
		if err := s.checkRemote(r.Context(), c, q.Remote); err != nil {
			return reply{}, err
		}
	}
	o, err := bb.Backups(r.Context())
	if err != nil {
		return reply{}, err // ErrNotReady: 503 with Retry-After, as every query
	}
	now := time.Now()
	ans := BackupsAnswer{Guests: o.Guests(q, now), Jobs: o.Jobs(q, now), PendingLogs: map[string]int{}, Built: o.Built().Unix(), Now: now.Unix()}
	for remote, n := range o.PendingLogs() {
		if q.Remote == "" && c.allows(remote) || q.Remote == remote {
			ans.PendingLogs[remote] = n
		}
	}
	if ans.Guests == nil {
		ans.Guests = []backups.Row{}
	}
	if ans.Jobs == nil {
		ans.Jobs = []backups.Job{}
	}
	return reply{data: ans}, nil
}

// parseAge reads older_than: a Go duration ("26h", "90m") or seconds.
func parseAge(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(100*365*24*time.Hour/time.Second) {
			return 0, errors.New("want a duration of 0 to 100 years")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration such as 26h or 90m, or seconds - got '" + clip(v) + "'")
	}
	return d, nil
}
