package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/task"
)

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // part of stdout
		stderr string // part of stderr
	}{
		{name: "no command", args: nil, code: 2, stderr: "Commands:"},
		{name: "help", args: []string{"help"}, code: 0, stdout: "check-config"},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: "serve "},
		{name: "help command", args: []string{"help", "serve"}, code: 0, stdout: "Usage: taskfleet serve --config FILE"},
		{name: "command -h", args: []string{"demo", "-h"}, code: 0, stderr: "-cache-dir"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"serve", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{name: "bad log format", args: []string{"serve", "--log-format", "xml"}, code: 2, stderr: `invalid --log-format "xml"`},
		{name: "bad log level", args: []string{"check-config", "--log-level", "loud", "x.toml"}, code: 2, stderr: `invalid --log-level "loud"`},
		{name: "serve without a config", args: []string{"serve", "--config", "/nonexistent/taskfleet.toml"}, code: 2, stderr: "no such file"},
		{name: "tasks without sub-command", args: []string{"tasks"}, code: 2, stderr: "list|stats|track|untrack|refresh"},
		{name: "tasks unknown sub-command", args: []string{"tasks", "purge"}, code: 2, stderr: `unknown sub-command "purge"`},
		{name: "track without upid", args: []string{"tasks", "track", "--remote", "x"}, code: 2, stderr: "--upid is required"},
		{name: "sim without out", args: []string{"sim"}, code: 2, stderr: "--out DIR is required"},
		{name: "bench flags", args: []string{"bench", "--bogus"}, code: 2, stderr: "Usage: taskfleet bench"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("taskfleet %v = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q",
					tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestLogger(t *testing.T) {
	var out bytes.Buffer
	l := logFlags{format: "json", level: "warn"}
	log, err := l.logger(&out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hidden")
	log.Warn().Str("remote", "r1").Msg("shown")
	if got := out.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"level":"warn","remote":"r1"`) {
		t.Errorf("json logger wrote %q", got)
	}
	out.Reset()
	l = logFlags{format: "console", level: "debug"}
	if log, err = l.logger(&out); err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("for humans")
	if got := out.String(); !strings.Contains(got, "DBG") || !strings.Contains(got, "for humans") || strings.Contains(got, "{") {
		t.Errorf("console logger wrote %q", got)
	}
}

func TestRemoteStatus(t *testing.T) {
	upid := "UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:"
	h := actors.Health{
		Remote: "pve-east", Kind: task.PVE, State: actors.StateDown,
		LastSuccess: time.Unix(1700000000, 0), LastError: "timeout", LastErrorAt: time.Unix(1700000100, 0),
		ConsecutiveFailures: 3, LastFetchDuration: 1500 * time.Millisecond, TasksFetched: 42,
		Nodes: []string{"pve1", "pve2"}, Tracked: []string{upid},
	}
	got := remoteStatus(h)
	want := api.RemoteStatus{
		Remote: "pve-east", Type: "pve", State: "down", LastSuccess: 1700000000, LastError: "timeout",
		LastErrorTime: 1700000100, ConsecutiveFailures: 3, LastFetchDuration: 1.5, Nodes: []string{"pve1", "pve2"},
		Tracked: []string{"pve:pve-east!" + upid}, TasksFetched: 42,
	}
	if !equalStatus(got, want) {
		t.Errorf("remoteStatus = %+v, want %+v", got, want)
	}
	if got := remoteStatus(actors.Health{Remote: "pbs-1", Kind: task.PBS}); got.State != actors.StateStarting || got.LastSuccess != 0 || got.LastErrorTime != 0 {
		t.Errorf("remoteStatus of a new remote = %+v, want starting and no times", got)
	}
}

func equalStatus(a, b api.RemoteStatus) bool {
	return a.Remote == b.Remote && a.Type == b.Type && a.State == b.State && a.LastSuccess == b.LastSuccess &&
		a.LastError == b.LastError && a.LastErrorTime == b.LastErrorTime && a.ConsecutiveFailures == b.ConsecutiveFailures &&
		a.LastFetchDuration == b.LastFetchDuration && strings.Join(a.Nodes, ",") == strings.Join(b.Nodes, ",") &&
		strings.Join(a.Tracked, ",") == strings.Join(b.Tracked, ",") && a.TasksFetched == b.TasksFetched
}

// TestBackendBeforeStart: while the cache loads, the backend answers from
// the configuration and refuses queries.
func TestBackendBeforeStart(t *testing.T) {
	cfg := config.Default()
	cfg.Remotes = []config.Remote{{ID: "b", Type: task.PBS}, {ID: "a", Type: task.PVE}}
	b := newBackend("taskfleet.toml", &cfg, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8087}, zerolog.Nop())
	ctx := context.Background()
	if err := b.Ready(ctx); !errors.Is(err, errNotStarted) {
		t.Errorf("Ready before the service started = %v, want errNotStarted", err)
	}
	if _, err := b.Tasks(ctx, task.NewFilter()); !errors.Is(err, errNotStarted) || !errors.Is(err, api.ErrNotReady) {
		t.Errorf("Tasks = %v, want errNotStarted, an api.ErrNotReady (503)", err)
	}
	if _, err := b.Statistics(ctx, task.NewFilter()); !errors.Is(err, api.ErrNotReady) {
		t.Errorf("Statistics = %v, want an api.ErrNotReady (503)", err)
	}
	if _, _, err := b.StreamTasks(ctx, task.NewFilter()); !errors.Is(err, api.ErrNotReady) {
		t.Errorf("StreamTasks = %v, want an api.ErrNotReady (503)", err)
	}
	if err := notReady(fmt.Errorf("list: %w", actors.ErrNotReady)); !errors.Is(err, api.ErrNotReady) {
		t.Errorf("notReady(actors.ErrNotReady) = %v, want an api.ErrNotReady", err)
	}
	if err := b.Track(ctx, "a", task.UPID{}); !errors.Is(err, errNotStarted) {
		t.Errorf("Track = %v, want errNotStarted", err)
	}
	if err := b.Reload(ctx); !errors.Is(err, errNotStarted) {
		t.Errorf("Reload = %v, want errNotStarted", err)
	}
	if !b.HasRemote(ctx, "a") || b.HasRemote(ctx, "c") {
		t.Error("HasRemote does not follow the configuration")
	}
	if r, ok := b.remote("b"); !ok || r.ID != "b" || r.Type != task.PBS {
		t.Errorf("remote(b) = %+v, %v; want the PBS remote b", r, ok)
	}
	st := b.Remotes(ctx)
	if len(st) != 2 || st[0].Remote != "b" || st[0].Type != "pbs" || st[0].State != "starting" || st[1].Remote != "a" {
		t.Errorf("Remotes = %+v, want b and a starting", st)
	}
}

func TestCheckListen(t *testing.T) {
	open := config.Default() // no api_token
	withToken := config.Default()
	withToken.APITokens = []config.APIToken{{ID: "ops", Secret: "0123456789abcdef0123", Remotes: []string{"*"}}}
	loopback := &net.TCPAddr{IP: net.IPv6loopback, Port: 8087}
	public := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8087}
	for _, tc := range []struct {
		cfg  *config.Config
		addr net.Addr
		ok   bool
	}{
		{cfg: &open, addr: loopback, ok: true},
		{cfg: &open, addr: public, ok: false},
		{cfg: &withToken, addr: public, ok: true},
	} {
		if err := checkListen(tc.cfg, tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkListen(%d tokens, %v) = %v, want ok %v", len(tc.cfg.APITokens), tc.addr, err, tc.ok)
		}
	}
}

func TestAPITokens(t *testing.T) {
	cfg := config.Default()
	cfg.APITokens = []config.APIToken{
		{ID: "ops", Secret: "secret-one-0123456789", Remotes: []string{"*"}},
		{ID: "team", Secret: "secret-two-0123456789", Remotes: []string{"a", "b"}},
	}
	got := apiTokens(&cfg)
	if len(got) != 2 || got[0].Remotes != nil || got[0].Secret != "secret-one-0123456789" ||
		strings.Join(got[1].Remotes, ",") != "a,b" || got[1].ID != "team" {
		t.Errorf("apiTokens = %v", got)
	}
}

func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p := &progress{log: zerolog.New(&out)}
	at := time.Unix(1700000000, 0)
	st := func(done, total int) []api.RemoteStatus {
		s := make([]api.RemoteStatus, total)
		for i := range done {
			s[i].LastSuccess = 1
		}
		return s
	}
	p.update(at, st(0, 25), nil)
	p.update(at.Add(time.Second), st(0, 25), nil)    // nothing new
	p.update(at.Add(2*time.Second), st(12, 25), nil) // remotes done
	for s := 3; s < 600; s++ {                       // stalled: named once
		p.update(at.Add(time.Duration(s)*time.Second), st(12, 25), nil)
	}
	p.update(at.Add(600*time.Second), st(25, 25), nil) // complete
	p.update(at.Add(601*time.Second), st(25, 25), nil) // stays complete
	p.update(at.Add(602*time.Second), st(25, 26), nil) // a remote added by a reload
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"backfill 0/25 remotes, 0 tasks", "backfill 12/25 remotes, 0 tasks", "backfill waiting for 13 remotes", "backfill complete: 25 remotes, 0 tasks", "backfill 25/26 remotes, 0 tasks"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], `"message":"`+w+`"`) {
			t.Errorf("line %d = %s, want message %q", i, lines[i], w)
		}
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 48210: "48,210", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	for s, want := range map[int64]string{-1: "-", 0: "0s", 59: "59s", 61: "1m01s", 3600: "1h00m", 3725: "1h02m", 90000: "1d01h"} {
		if got := shortDuration(s); got != want {
			t.Errorf("shortDuration(%d) = %q, want %q", s, got, want)
		}
	}
	if got := clipText("ab€cd", 4); got != "ab…" {
		t.Errorf("clipText = %q, want it cut before the €", got)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 8, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{in: "1700000000", want: 1700000000},
		{in: "24h", want: now.Add(-24 * time.Hour).Unix()},
		{in: "2026-08-01", want: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC).Unix()},
		{in: "2026-08-01 14:30", want: time.Date(2026, 8, 1, 14, 30, 0, 0, time.UTC).Unix()},
		{in: "2026-08-01T14:30:00+02:00", want: time.Date(2026, 8, 1, 12, 30, 0, 0, time.UTC).Unix()},
	} {
		if got, err := parseWhen(tc.in, now); err != nil || got != tc.want {
			t.Errorf("parseWhen(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseWhen("last tuesday", now); err == nil {
		t.Error("parseWhen accepted \"last tuesday\"")
	}
}

func TestPrintTasks(t *testing.T) {
	id, end, ok := "100", int64(1700000075), "OK"
	items := []api.TaskListItem{
		{UPID: "pve:pve-east!UPID:pve1:00001000:00A00000:6553F110:qmstart:100:root@pam:", Node: "pve1", StartTime: 1700000016, WorkerType: "qmstart", WorkerID: &id, User: "root@pam"},
		{UPID: "pbs:pbs-1!UPID:pbs1:00000100:00000200:00000001:6553F100:garbage_collection::root@pam:", Node: "pbs1", StartTime: 1700000000, WorkerType: "garbage_collection", User: "root@pam", EndTime: &end, Status: &ok},
	}
	var out bytes.Buffer
	if err := printTasks(&out, items, 10, 1234, time.Unix(1700000100, 0).UTC()); err != nil {
		t.Fatal(err)
	}
	want := `STARTED              REMOTE    NODE  TYPE                ID   USER      DURATION  STATUS
2023-11-14 22:13:36  pve-east  pve1  qmstart             100  root@pam     1m24s  RUNNING
2023-11-14 22:13:20  pbs-1     pbs1  garbage_collection  -    root@pam     1m15s  OK
tasks 11-12 of 1,234
`
	if out.String() != want {
		t.Errorf("printTasks wrote\n%s\nwant\n%s", out.String(), want)
	}
}

func TestRefusal(t *testing.T) {
	r := &refusal{status: 400, message: "Parameter verification failed.", params: map[string]string{"limit": "too small", "errors": "not a boolean"}}
	want := "400 Bad Request: Parameter verification failed.\n  errors: not a boolean\n  limit: too small"
	if r.Error() != want {
		t.Errorf("refusal = %q, want %q", r.Error(), want)
	}
}

func TestCheckCacheDir(t *testing.T) {
	dir := t.TempDir()
	if err := checkCacheDir(filepath.Join(dir, "a", "cache")); err != nil {
		t.Errorf("new nested cache dir: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "a", "cache")); len(entries) != 0 {
		t.Errorf("check left %d files behind", len(entries))
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkCacheDir(filepath.Join(file, "cache")); err == nil || !strings.HasPrefix(err.Error(), "cache dir: ") {
		t.Errorf("cache dir below a file: %v, want a cache dir error", err)
	}
}
