package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/task"
)

// taskFlags are the --remote and --upid flags of track and untrack.
type taskFlags struct{ remote, upid string }

// register adds the flags to fs.
func (f *taskFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.remote, "remote", "", "the task's remote `id` (not needed with a pve:REMOTE!UPID:... upid)")
	fs.StringVar(&f.upid, "upid", "", "the task's `UPID`: as the remote shows it (UPID:node:..., with --remote) or as taskfleet shows it (pve:REMOTE!UPID:...)")
}

// params checks the flags and returns the API's remote and upid: a plain
// UPID with --remote, or a remote-qualified one (whose remote must agree
// with --remote when both are given).
func (f *taskFlags) params() (url.Values, error) {
	u := strings.TrimSpace(f.upid)
	remote := strings.TrimSpace(f.remote)
	switch {
	case u == "":
		return nil, usageErr{errors.New("--upid is required")}
	case strings.HasPrefix(u, "UPID:"):
		if remote == "" {
			return nil, usageErr{fmt.Errorf("--upid is a plain UPID: give its remote with --remote (or the upid as taskfleet shows it, pve:REMOTE!UPID:...)")}
		}
		if _, err := task.ParseUPID(u); err != nil {
			return nil, usageErr{fmt.Errorf("--upid: %v", err)}
		}
	case strings.Contains(u, "!UPID:"):
		ru, err := task.ParseRemoteUPID(u)
		if err != nil {
			return nil, usageErr{fmt.Errorf("--upid: %v", err)}
		}
		if remote != "" && remote != ru.Remote {
			return nil, usageErr{fmt.Errorf("--upid names remote %q, --remote %q", ru.Remote, remote)}
		}
		remote, u = ru.Remote, ru.UPID.String()
	default:
		return nil, usageErr{fmt.Errorf("--upid %q is not a UPID: want UPID:node:... (with --remote) or pve:REMOTE!UPID:...", clipText(u, 60))}
	}
	return url.Values{"remote": {remote}, "upid": {u}}, nil
}

// trackFlags registers the flags of tasks track and returns its action.
func trackFlags(fs *flag.FlagSet) func(context.Context, *client, io.Writer) error {
	var f taskFlags
	f.register(fs)
	wait := fs.Bool("wait", false, "wait until the task finishes, print its status and exit 1 if it failed (Ctrl-C stops waiting; the daemon keeps tracking)")
	interval := fs.Duration("interval", 2*time.Second, "with --wait, how often to ask the daemon")
	return func(ctx context.Context, c *client, out io.Writer) error {
		p, err := f.params()
		if err != nil {
			return err
		}
		a, err := c.call(ctx, http.MethodPost, pathTrack, p)
		if err != nil {
			return err
		}
		var tracked string
		if err := json.Unmarshal(a.Data, &tracked); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		if !*wait {
			if c.json {
				return printJSON(out, a.Data)
			}
			_, err = fmt.Fprintf(out, "tracking %s\n", tracked)
			return err
		}
		if !c.json {
			fmt.Fprintf(out, "tracking %s; waiting for it to finish\n", tracked)
		}
		it, err := waitTask(ctx, c, tracked, max(*interval, 100*time.Millisecond))
		if err != nil {
			return err
		}
		return printFinished(out, c, it)
	}
}

// lostAfter is how many polls in a row may find the task neither finished
// in the cache nor tracked before waitTask gives up (a task the remote no
// longer knows): the daemon records a finished task before it stops
// tracking it, so one such poll can be a race, several cannot.
const lostAfter = 3

// waitTask asks the daemon every interval for the tracked task until it
// has finished, and returns it.
func waitTask(ctx context.Context, c *client, tracked string, interval time.Duration) (api.TaskListItem, error) {
	ru, err := task.ParseRemoteUPID(tracked)
	if err != nil {
		return api.TaskListItem{}, fmt.Errorf("tracked task: %w", err)
	}
	start := strconv.FormatInt(ru.UPID.StartTime, 10)
	p := url.Values{"remote": {ru.Remote}, "since": {start}, "until": {start}, "limit": {"0"}}
	t := time.NewTicker(interval)
	defer t.Stop()
	lost := 0
	for {
		a, err := c.call(ctx, http.MethodGet, pathList, p)
		if err != nil {
			return api.TaskListItem{}, err
		}
		var items []api.TaskListItem
		if err := json.Unmarshal(a.Data, &items); err != nil {
			return api.TaskListItem{}, fmt.Errorf("decode tasks: %w", err)
		}
		found := false
		for _, it := range items {
			if it.UPID == tracked && it.EndTime != nil {
				return it, nil
			}
			found = found || it.UPID == tracked
		}
		if found || stillTracked(ctx, c, ru.Remote, tracked) {
			lost = 0
		} else if lost++; lost >= lostAfter {
			return api.TaskListItem{}, fmt.Errorf("%s is no longer tracked and not in the cache: the remote does not know it (see the daemon's log)", tracked)
		}
		select {
		case <-ctx.Done():
			return api.TaskListItem{}, fmt.Errorf("stopped waiting for %s: %w (the daemon keeps tracking it)", tracked, ctx.Err())
		case <-t.C:
		}
	}
}

// stillTracked reports whether the daemon tracks the task (true when it
// cannot tell).
func stillTracked(ctx context.Context, c *client, remote, tracked string) bool {
	a, err := c.call(ctx, http.MethodGet, pathStatus, nil)
	if err != nil {
		return true
	}
	var st []api.RemoteStatus
	if json.Unmarshal(a.Data, &st) != nil {
		return true
	}
	for _, s := range st {
		if s.Remote == remote {
			return slices.Contains(s.Tracked, tracked)
		}
	}
	return false
}

// printFinished prints a finished task's status; a task that did not end
// OK (or with warnings) is an error, for the exit code.
func printFinished(out io.Writer, c *client, it api.TaskListItem) error {
	status := ""
	if it.Status != nil {
		status = *it.Status
	}
	if c.json {
		b, err := json.Marshal(it)
		if err != nil {
			return fmt.Errorf("format answer: %w", err)
		}
		if err := printJSON(out, b); err != nil {
			return err
		}
	} else {
		line := fmt.Sprintf("finished after %s: %s", shortDuration(*it.EndTime-it.StartTime), status)
		if colorWanted(out) {
			if col := statusColor(status, false); col != "" {
				line = col + line + ansiReset
			}
		}
		fmt.Fprintln(out, line)
	}
	switch task.ClassifyStatus(status) {
	case task.StatusOK, task.StatusWarning:
		return nil
	}
	return fmt.Errorf("task %s failed: %s", it.UPID, status)
}

// untrackFlags registers the flags of tasks untrack and returns its action.
func untrackFlags(fs *flag.FlagSet) func(context.Context, *client, io.Writer) error {
	var f taskFlags
	f.register(fs)
	return func(ctx context.Context, c *client, out io.Writer) error {
		p, err := f.params()
		if err != nil {
			return err
		}
		if _, err := c.call(ctx, http.MethodDelete, pathTrack, p); err != nil {
			var r *refusal
			if errors.As(err, &r) && r.status == http.StatusNotFound {
				return fmt.Errorf("%s!%s is not tracked (or the daemon has no such remote): %s", p.Get("remote"), p.Get("upid"), r.message)
			}
			return err
		}
		_, err = fmt.Fprintf(out, "no longer tracking %s on %s\n", p.Get("upid"), p.Get("remote"))
		return err
	}
}

// pathStatus is the API path of the remotes' health.
const pathStatus = "/api2/json/remotes/status"

// remotesFlags registers the flags of taskfleet remotes and returns its
// action: a table of each remote's health.
func remotesFlags(*flag.FlagSet) func(context.Context, *client, io.Writer) error {
	return func(ctx context.Context, c *client, out io.Writer) error {
		a, err := c.call(ctx, http.MethodGet, pathStatus, nil)
		if err != nil {
			return err
		}
		if c.json {
			return printJSON(out, a.Data)
		}
		var st []api.RemoteStatus
		if err := json.Unmarshal(a.Data, &st); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		return printRemotes(out, st, time.Now())
	}
}

// printRemotes prints the health table: state (coloured on a terminal),
// last success, last error, consecutive failures, tasks fetched.
func printRemotes(out io.Writer, st []api.RemoteStatus, now time.Time) error {
	t := &table{headers: []string{"REMOTE", "TYPE", "STATE", "LAST SUCCESS", "FAILURES", "TASKS", "NODES", "LAST ERROR"},
		right: []bool{4: true, 5: true, 6: true}, flex: 7,
		cellColor: func(col int, text string) string {
			if col == 2 {
				return stateColor(text)
			}
			return ""
		}}
	down := 0
	for _, s := range st {
		last := "never"
		if s.LastSuccess > 0 {
			last = shortDuration(now.Unix()-s.LastSuccess) + " ago"
		}
		lastErr := "-"
		if s.LastError != "" {
			lastErr = s.LastError
			if s.LastErrorTime > 0 {
				lastErr = shortDuration(now.Unix()-s.LastErrorTime) + " ago: " + s.LastError
			}
		}
		if s.State == "down" || s.State == "crashing" {
			down++
		}
		t.add("", s.Remote, s.Type, s.State, last, thousands(s.ConsecutiveFailures), thousands(s.TasksFetched), thousands(len(s.Nodes)), lastErr)
	}
	if err := t.write(out, colorWanted(out), terminalWidth(out)); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "%s remotes, %s down\n", thousands(len(st)), thousands(down))
	return err
}
