package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/task"
)

// API paths the client uses.
const (
	pathList       = "/api2/json/remotes/tasks/list"
	pathStatistics = "/api2/json/remotes/tasks/statistics"
	pathTrack      = "/api2/json/remotes/tasks/track"
	pathRefresh    = "/api2/json/remotes/tasks/refresh"
)

// filterFlags are the task filters of list and stats.
type filterFlags struct {
	remote, node, typ, user string
	status                  stringList
	running, errors         bool
	since, until            string
}

// register adds the filter flags to fs.
func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.remote, "remote", "", "only tasks of this remote `id`")
	fs.StringVar(&f.node, "node", "", "only tasks of this `node`")
	fs.StringVar(&f.typ, "type", "", "only tasks whose worker type contains this `text` (vz matches vzdump)")
	fs.StringVar(&f.user, "user", "", "only tasks whose user contains this `text`, case-insensitive")
	fs.Var(&f.status, "status", "only finished tasks of these `classes`: ok, warning, error, unknown (repeat or comma separate)")
	fs.BoolVar(&f.running, "running", false, "only running tasks")
	fs.BoolVar(&f.errors, "errors", false, "only finished tasks that did not end OK")
	fs.StringVar(&f.since, "since", "", "only tasks started at or after this `time` (Unix seconds, 2006-01-02[ 15:04], RFC 3339, or a duration ago: 24h)")
	fs.StringVar(&f.until, "until", "", "only tasks started at or before this `time` (as --since)")
}

// params returns the filters as API parameters.
func (f *filterFlags) params(now time.Time) (url.Values, error) {
	p := url.Values{}
	set := func(k, v string) {
		if v != "" {
			p.Set(k, v)
		}
	}
	set("remote", f.remote)
	set("node", f.node)
	set("typefilter", f.typ)
	set("userfilter", f.user)
	if len(f.status) > 0 {
		p.Set("statusfilter", strings.Join(f.status, ","))
	}
	if f.running {
		p.Set("running", "1")
	}
	if f.errors {
		p.Set("errors", "1")
	}
	for _, w := range []struct{ name, value string }{{"since", f.since}, {"until", f.until}} {
		if w.value == "" {
			continue
		}
		t, err := parseWhen(w.value, now)
		if err != nil {
			return nil, usageErr{fmt.Errorf("--%s: %w", w.name, err)}
		}
		p.Set(w.name, strconv.FormatInt(t, 10))
	}
	return p, nil
}

// listFlags registers the flags of tasks list and returns its action.
func listFlags(fs *flag.FlagSet) func(context.Context, *client, io.Writer) error {
	var f filterFlags
	f.register(fs)
	limit := fs.Int("limit", task.DefaultLimit, "show at most this many tasks; 0: all")
	start := fs.Int("start", 0, "skip this many matching tasks")
	quiet := fs.Bool("q", false, "print only the tasks' UPIDs (pve:REMOTE!UPID:...), one a line, for scripts")
	return func(ctx context.Context, c *client, out io.Writer) error {
		now := time.Now()
		p, err := f.params(now)
		if err != nil {
			return err
		}
		p.Set("limit", strconv.Itoa(*limit))
		p.Set("start", strconv.Itoa(*start))
		a, err := c.call(ctx, http.MethodGet, pathList, p)
		if err != nil {
			return err
		}
		if c.json {
			return printListJSON(out, a)
		}
		var items []api.TaskListItem
		if err := json.Unmarshal(a.Data, &items); err != nil {
			return fmt.Errorf("decode tasks: %w", err)
		}
		if *quiet {
			for _, it := range items {
				if _, err := fmt.Fprintln(out, it.UPID); err != nil {
					return err
				}
			}
			return nil
		}
		total := len(items)
		if a.Total != nil {
			total = *a.Total
		}
		return printTasks(out, items, *start, total, now)
	}
}

// printListJSON prints a task list answer as JSON: the tasks and the
// total number of matching tasks, {"data": [...], "total": N}.
func printListJSON(out io.Writer, a *answer) error {
	v := struct {
		Data  json.RawMessage `json:"data"`
		Total *int            `json:"total,omitempty"`
	}{a.Data, a.Total}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("format answer: %w", err)
	}
	return printJSON(out, b)
}

// printTasks prints a table of tasks and a line with the total: on a
// terminal, warnings in yellow and errors in red, the status column cut
// to fit its width.
func printTasks(out io.Writer, items []api.TaskListItem, start, total int, now time.Time) error {
	t := &table{headers: []string{"STARTED", "REMOTE", "NODE", "TYPE", "ID", "USER", "DURATION", "STATUS"}, right: []bool{6: true}, flex: 7}
	for _, it := range items {
		remote := ""
		if ru, err := task.ParseRemoteUPID(it.UPID); err == nil {
			remote = ru.Remote
		}
		id := "-"
		if it.WorkerID != nil && *it.WorkerID != "" {
			id = *it.WorkerID
		}
		status, end := "RUNNING", now.Unix()
		if it.Status != nil {
			status = *it.Status
		}
		if it.EndTime != nil {
			end = *it.EndTime
		}
		t.add(statusColor(status, it.EndTime == nil),
			time.Unix(it.StartTime, 0).In(now.Location()).Format(time.DateTime),
			remote, it.Node, it.WorkerType, id, it.User, shortDuration(end-it.StartTime), status)
	}
	if err := t.write(out, colorWanted(out), terminalWidth(out)); err != nil {
		return err
	}
	switch {
	case len(items) == 0:
		_, err := fmt.Fprintf(out, "no tasks shown, %s match\n", thousands(total))
		return err
	default:
		_, err := fmt.Fprintf(out, "tasks %s-%s of %s\n", thousands(start+1), thousands(start+len(items)), thousands(total))
		return err
	}
}

// shortDuration formats seconds as "45s", "3m12s", "2h05m" or "3d04h".
func shortDuration(s int64) string {
	switch {
	case s < 0:
		return "-"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// statsFlags registers the flags of tasks stats and returns its action.
func statsFlags(fs *flag.FlagSet) func(context.Context, *client, io.Writer) error {
	var f filterFlags
	f.register(fs)
	return func(ctx context.Context, c *client, out io.Writer) error {
		p, err := f.params(time.Now())
		if err != nil {
			return err
		}
		a, err := c.call(ctx, http.MethodGet, pathStatistics, p)
		if err != nil {
			return err
		}
		if c.json {
			return printJSON(out, a.Data)
		}
		var st task.Statistics
		if err := json.Unmarshal(a.Data, &st); err != nil {
			return fmt.Errorf("decode statistics: %w", err)
		}
		return printStatistics(out, st)
	}
}

// printStatistics prints the counts by type, then by remote: names left
// aligned, counts right aligned with thousands separators; on a terminal,
// rows with errors in red and with warnings in yellow.
func printStatistics(out io.Writer, st task.Statistics) error {
	color, width := colorWanted(out), terminalWidth(out)
	for i, part := range []struct {
		title  string
		counts map[string]task.Counts
	}{{"TYPE", st.ByType}, {"REMOTE", st.ByRemote}} {
		if i > 0 {
			if _, err := io.WriteString(out, "\n"); err != nil {
				return err
			}
		}
		t := &table{headers: []string{part.title, "OK", "WARNING", "ERROR", "UNKNOWN", "TOTAL"}, right: []bool{false, true, true, true, true, true}, flex: 0}
		var sum task.Counts
		row := func(name string, n task.Counts) {
			c := ""
			switch {
			case n.Error > 0:
				c = ansiRed
			case n.Warning > 0:
				c = ansiYellow
			}
			t.add(c, name, thousands(n.OK), thousands(n.Warning), thousands(n.Error), thousands(n.Unknown), thousands(n.OK+n.Warning+n.Error+n.Unknown))
		}
		for _, k := range slices.Sorted(maps.Keys(part.counts)) {
			n := part.counts[k]
			sum = task.Counts{OK: sum.OK + n.OK, Warning: sum.Warning + n.Warning, Error: sum.Error + n.Error, Unknown: sum.Unknown + n.Unknown}
			row(k, n)
		}
		t.add("", "all", thousands(sum.OK), thousands(sum.Warning), thousands(sum.Error), thousands(sum.Unknown), thousands(sum.OK+sum.Warning+sum.Error+sum.Unknown))
		if err := t.write(out, color, width); err != nil {
			return err
		}
	}
	return nil
}

// refreshFlags registers the flags of tasks refresh and returns its action.
// With --wait, a remote whose refresh failed makes it fail.
func refreshFlags(fs *flag.FlagSet) func(context.Context, *client, io.Writer) error {
	var remotes stringList
	fs.Var(&remotes, "remote", "refresh this remote `id` (repeat or comma separate; default: all)")
	wait := fs.Bool("wait", false, "wait until every refresh has finished or failed")
	return func(ctx context.Context, c *client, out io.Writer) error {
		p := url.Values{}
		if len(remotes) > 0 {
			p.Set("remotes", strings.Join(remotes, ","))
		}
		if *wait {
			p.Set("wait", "1")
		}
		a, err := c.call(ctx, http.MethodPost, pathRefresh, p)
		if err != nil {
			return err
		}
		var results []api.RefreshResult
		if err := json.Unmarshal(a.Data, &results); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		if c.json {
			err = printJSON(out, a.Data)
		} else {
			err = printRefresh(out, results, remotes, *wait)
		}
		if err != nil {
			return err
		}
		failed := 0
		for _, r := range results {
			if r.Error != "" {
				failed++
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d remotes failed", failed, len(results))
		}
		return nil
	}
}

// printRefresh prints the outcome of a refresh.
func printRefresh(out io.Writer, results []api.RefreshResult, remotes []string, wait bool) error {
	if !wait {
		which := "every remote"
		if len(remotes) > 0 {
			which = strings.Join(remotes, ", ")
		}
		_, err := fmt.Fprintf(out, "refresh scheduled: %s\n", which)
		return err
	}
	t := &table{headers: []string{"REMOTE", "TASKS", "DURATION", "ERROR"}, right: []bool{false, true, true}, flex: 3}
	for _, r := range results {
		errText, c := "-", ""
		if r.Error != "" {
			errText, c = r.Error, ansiRed
		}
		t.add(c, r.Remote, thousands(r.Tasks), fmt.Sprintf("%.2fs", r.Duration), errText)
	}
	return t.write(out, colorWanted(out), terminalWidth(out))
}
