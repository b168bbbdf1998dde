package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/task"
)

const (
	trackedUPID = "UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:"
	trackedRU   = "pve:pve-east!" + trackedUPID
)

// fakeDaemon answers track, untrack, list and status like the API; the
// tracked task finishes with status after polls list requests.
type fakeDaemon struct {
	mu       sync.Mutex
	status   string
	polls    int
	tracked  map[string]bool
	requests []string
}

func (d *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r.ParseForm()
	d.requests = append(d.requests, r.Method+" "+r.URL.Path+" "+r.Form.Encode())
	write := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	key := r.Form.Get("remote") + "!" + r.Form.Get("upid")
	switch {
	case r.URL.Path == pathTrack && r.Method == http.MethodPost:
		d.tracked[key] = true
		write(200, map[string]any{"data": "pve:" + key})
	case r.URL.Path == pathTrack && r.Method == http.MethodDelete:
		if !d.tracked[key] {
			write(404, map[string]any{"data": nil, "message": "task not tracked"})
			return
		}
		delete(d.tracked, key)
		write(200, map[string]any{"data": nil})
	case r.URL.Path == pathList:
		u, _ := task.ParseUPID(trackedUPID)
		it := api.NewTaskListItem(task.Task{Remote: "pve-east", UPID: u})
		d.polls++
		if d.status == "lost" {
			write(200, map[string]any{"data": []any{}, "total": 0})
			return
		}
		if d.polls >= 3 {
			end := u.StartTime + 192
			it.EndTime, it.Status = &end, &d.status
		}
		write(200, map[string]any{"data": []any{it}, "total": 1})
	case r.URL.Path == pathStatus && d.status == "lost":
		write(200, map[string]any{"data": []api.RemoteStatus{{Remote: "pve-east", Type: "pve", State: "up"}}})
	case r.URL.Path == pathStatus:
		write(200, map[string]any{"data": []api.RemoteStatus{
			{Remote: "pbs-1", Type: "pbs", State: "down", LastError: "connect: connection refused", LastErrorTime: time.Now().Unix() - 30, ConsecutiveFailures: 12, Nodes: []string{"localhost"}},
			{Remote: "pve-east", Type: "pve", State: "up", LastSuccess: time.Now().Unix() - 5, TasksFetched: 1234567, Nodes: []string{"a", "b", "c"}},
		}})
	default:
		write(404, map[string]any{"data": nil, "message": "no such path"})
	}
}

func startFake(t *testing.T, status string) (*fakeDaemon, string) {
	d := &fakeDaemon{status: status, tracked: map[string]bool{}}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv.URL
}

// TestTrackWait: tasks track --wait returns when the task has finished,
// prints its status and exits 1 for a failed task, 0 for OK.
func TestTrackWait(t *testing.T) {
	for _, c := range []struct {
		status string
		code   int
	}{{"OK", exitOK}, {"WARNINGS: 2", exitOK}, {"job errors", exitFailure}} {
		_, base := startFake(t, c.status)
		var stdout, stderr bytes.Buffer
		code := dispatch(context.Background(), []string{"tasks", "track", "--url", base, "--remote", "pve-east", "--upid", trackedUPID, "--wait", "--interval", "10ms"}, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String(), "finished after 3m12s: "+c.status) {
			t.Errorf("status %q: exit %d, want %d; stdout:\n%s\nstderr:\n%s", c.status, code, c.code, stdout.String(), stderr.String())
		}
		if c.code != exitOK && !strings.Contains(stderr.String(), "failed: job errors") {
			t.Errorf("failed task: stderr %q", stderr.String())
		}
	}
}

// TestTrackWaitLost: a task that is neither in the cache nor tracked any
// more ends the wait with an error instead of waiting forever.
func TestTrackWaitLost(t *testing.T) {
	_, base := startFake(t, "lost")
	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), []string{"tasks", "track", "--url", base, "--upid", trackedRU, "--wait", "--interval", "10ms"}, &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "is no longer tracked and not in the cache") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestUntrack: tasks untrack calls DELETE .../track?remote=R&upid=U;
// 200 {"data":null} is done, 404 (not tracked) exits 1 saying so.
func TestUntrack(t *testing.T) {
	d, base := startFake(t, "OK")
	args := []string{"tasks", "untrack", "--url", base, "--upid", trackedRU}
	var stdout, stderr bytes.Buffer
	if code := dispatch(context.Background(), args, &stdout, &stderr); code != exitFailure || !strings.Contains(stderr.String(), "is not tracked") {
		t.Errorf("untrack of an untracked task: exit %d, stderr %q", code, stderr.String())
	}
	d.tracked["pve-east!"+trackedUPID] = true
	stdout.Reset()
	if code := dispatch(context.Background(), args, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "no longer tracking "+trackedUPID+" on pve-east") {
		t.Errorf("untrack: exit %d, stdout %q", code, stdout.String())
	}
	want := "DELETE " + pathTrack + " remote=pve-east&upid=" + strings.NewReplacer(":", "%3A", "@", "%40").Replace(trackedUPID)
	if got := d.requests[len(d.requests)-1]; got != want {
		t.Errorf("request %q, want %q", got, want)
	}
}

// TestTaskFlagsUPID: a plain UPID is accepted with --remote, a
// remote-qualified one without it; garbage gets a message saying what
// is wanted.
func TestTaskFlagsUPID(t *testing.T) {
	for _, c := range []struct{ remote, upid, want string }{
		{"pve-east", trackedUPID, "remote=pve-east&upid=" + trackedUPID},
		{"pve-east", "  " + trackedUPID + "\n", "remote=pve-east&upid=" + trackedUPID},
		{"", trackedRU, "remote=pve-east&upid=" + trackedUPID},
		{"pve-east", trackedRU, "remote=pve-east&upid=" + trackedUPID},
		{"", trackedUPID, "error: --upid is a plain UPID: give its remote with --remote"},
		{"pve-west", trackedRU, `error: --upid names remote "pve-east", --remote "pve-west"`},
		{"pve-east", "garbage", `error: --upid "garbage" is not a UPID: want UPID:node:... (with --remote) or pve:REMOTE!UPID:...`},
	} {
		f := taskFlags{remote: c.remote, upid: c.upid}
		p, err := f.params()
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = fmt.Sprintf("remote=%s&upid=%s", p.Get("remote"), p.Get("upid"))
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("--remote %q --upid %q: %s\nwant %s", c.remote, c.upid, got, c.want)
		}
	}
}

// TestRemotesTable: taskfleet remotes prints the health table with
// thousands separators, and colour only on a terminal.
func TestRemotesTable(t *testing.T) {
	_, base := startFake(t, "OK")
	var stdout, stderr bytes.Buffer
	if code := dispatch(context.Background(), []string{"remotes", "--url", base}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"REMOTE    TYPE  STATE  LAST SUCCESS  FAILURES      TASKS  NODES  LAST ERROR", "pbs-1     pbs   down   never               12          0      1  30s ago: connect: connection refused", "pve-east  pve   up     5s ago               0  1,234,567      3  -", "2 remotes, 1 down"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes in a pipe:\n%q", out)
	}
}

// TestTableColorAndWidth: on a terminal rows are coloured (warnings
// yellow, errors red) without breaking the alignment, and the flexible
// column is cut to the width.
func TestTableColorAndWidth(t *testing.T) {
	tb := &table{headers: []string{"NAME", "N", "STATUS"}, right: []bool{1: true}, flex: 2}
	tb.add("", "a", "1,000", "OK")
	tb.add(statusColor("WARNINGS: 1", false), "bb", "2", "WARNINGS: 1")
	tb.add(statusColor("some very long error message that does not fit", false), "c", "3", "some very long error message that does not fit")
	var b bytes.Buffer
	tb.write(&b, true, 30)
	want := "\x1b[1mNAME      N  STATUS\x1b[0m\n" +
		"a     1,000  OK\n" +
		"\x1b[33mbb        2  WARNINGS: 1\x1b[0m\n" +
		"\x1b[31mc         3  some very long e…\x1b[0m\n" // 30 columns
	if b.String() != want {
		t.Errorf("table:\n%q\nwant\n%q", b.String(), want)
	}
}

// TestPrintStatisticsThousands: the statistics table has thousands
// separators, right-aligned counts, and no colour in a pipe.
func TestPrintStatisticsThousands(t *testing.T) {
	st := task.Statistics{
		ByType:   map[string]task.Counts{"vzdump": {OK: 1234567, Warning: 12, Error: 3456}},
		ByRemote: map[string]task.Counts{"pve-c001": {OK: 1234567, Warning: 12, Error: 3456}},
	}
	var b bytes.Buffer
	if err := printStatistics(&b, st); err != nil {
		t.Fatal(err)
	}
	want := `TYPE           OK  WARNING  ERROR  UNKNOWN      TOTAL
vzdump  1,234,567       12  3,456        0  1,238,035
all     1,234,567       12  3,456        0  1,238,035

REMOTE           OK  WARNING  ERROR  UNKNOWN      TOTAL
pve-c001  1,234,567       12  3,456        0  1,238,035
all       1,234,567       12  3,456        0  1,238,035
`
	if b.String() != want {
		t.Errorf("statistics:\n%s\nwant\n%s", b.String(), want)
	}
}

// TestVersion: taskfleet version and --version print the version, the
// commit (or why there is none) and the Go version.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var stdout, stderr bytes.Buffer
		code := dispatch(context.Background(), []string{arg}, &stdout, &stderr)
		out := stdout.String()
		if code != exitOK || !strings.HasPrefix(out, "taskfleet ") || !strings.Contains(out, "\ncommit  ") || !strings.Contains(out, "\ngo      go1.") {
			t.Errorf("taskfleet %s: exit %d:\n%s", arg, code, out)
		}
	}
}

// TestReorderFlags: flags after the arguments are parsed too
// ("check-config FILE --connect", "remote add URL --fingerprint FP").
func TestReorderFlags(t *testing.T) {
	fs := newFlagSet("x", "", "", &bytes.Buffer{})
	fs.Bool("connect", false, "")
	fs.Duration("timeout", 0, "")
	got := reorderFlags(fs, []string{"FILE", "--connect", "--timeout", "5s", "--", "-z"})
	want := []string{"--connect", "--timeout", "5s", "FILE", "--", "-z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reorderFlags = %q, want %q", got, want)
	}
}
