package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/internal/fleettest"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// Secrets of the API tokens the tests configure.
const (
	opsSecret  = "ops-secret-0123456789abcdef"  // remotes = ["*"]
	teamSecret = "team-secret-0123456789abcdef" // remotes = [scopedRemote]
	lateSecret = "late-secret-0123456789abcdef" // added by a reload
	// scopedRemote is the one remote the team token may see.
	scopedRemote = "pve-c001"
)

var (
	binDir   string // holds the binary built for the tests
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taskfleet-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of the taskfleet binary, built once per test run
// from this package.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "taskfleet")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// anyPort is the listen address of the daemons the tests start: the
// kernel picks a free port when the daemon binds, and the test reads it
// from the daemon's log (apiURL). A port picked by the test could be
// taken by another process before the daemon binds it.
const anyPort = "127.0.0.1:0"

// apiListening is the message of the daemon's log line that gives the
// address its API is bound to (key listen) and its scheme.
const apiListening = "taskfleet starting: api listening"

// apiURL waits until the daemon's JSON logs (read by logs) say where its
// API listens and returns the API's base URL ("http://127.0.0.1:port");
// it fails the test if alive returns false first.
func apiURL(t *testing.T, logs func() string, alive func() bool) string {
	t.Helper()
	var base string
	eventually(t, time.Minute, "the daemon did not log where its API listens", func() bool {
		for line := range strings.SplitSeq(logs(), "\n") {
			var ev struct {
				Message string `json:"message"`
				Listen  string `json:"listen"`
				Scheme  string `json:"scheme"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == apiListening && ev.Listen != "" && ev.Scheme != "" {
				base = ev.Scheme + "://" + ev.Listen
				return true
			}
		}
		if !alive() {
			t.Fatalf("the daemon exited before listening:\n%s", tail(logs(), 4000))
		}
		return false
	})
	return base
}

// apiURL waits until the daemon process p logs where its API listens and
// returns the API's base URL.
func (p *proc) apiURL() string {
	p.t.Helper()
	return apiURL(p.t, p.stderr.String, p.running)
}

// newFleet starts a simulated fleet on loopback whose clock stands still
// (unless sc.Now is set): no task starts or ends, so a complete fetch must
// match the fleet's held tasks exactly.
func newFleet(t *testing.T, sc sim.Config) *sim.Fleet {
	t.Helper()
	if sc.Now == nil {
		frozen := time.Now()
		sc.Now = func() time.Time { return frozen }
	}
	f, err := sim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// tokensTOML configures the ops token (every remote) and the team token
// (scopedRemote only).
const tokensTOML = `
[[api_token]]
id = "ops"
secret = "` + opsSecret + `"
remotes = ["*"]

[[api_token]]
id = "team"
secret = "` + teamSecret + `"
remotes = ["` + scopedRemote + `"]
`

// writeConfig writes the daemon's configuration for f into dir, listening
// on listen, with extra TOML appended; it returns the file's path.
func writeConfig(t *testing.T, f *sim.Fleet, dir, listen, extra string) string {
	t.Helper()
	path, err := f.WriteDaemonConfig(dir, sim.DaemonOptions{Listen: listen, Tick: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, extra)
	return path
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// held returns every task the fleet holds now (all of them lie within the
// cache's retention: the tests' history is shorter).
func held(f *sim.Fleet) []task.Task {
	var all []task.Task
	for _, r := range f.Remotes() {
		all = append(all, f.Held(r.ID)...)
	}
	slices.SortFunc(all, task.Compare)
	return all
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running taskfleet process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{} // closed when it has exited
	code   int           // exit code, once done
}

// start runs the binary with args, without $TASKFLEET_TOKEN and
// $TASKFLEET_URL.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startWith(t, nil, args...)
}

// startWith is start with env added to the environment.
func startWith(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(binary(t), args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.Env = append(os.Environ(), "TASKFLEET_TOKEN=", "TASKFLEET_URL=")
	p.cmd.Env = append(p.cmd.Env, env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr (tail):\n%s", strings.Join(args[:1], " "), tail(p.stderr.String(), 4000))
		}
	})
	return p
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits at most d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		p.t.Fatalf("process still running after %v; stderr:\n%s", d, tail(p.stderr.String(), 4000))
		return -1
	}
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// eventually calls cond every 50 ms until it returns true, failing the
// test with what after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiClient calls a daemon's API.
type apiClient struct {
	t    *testing.T
	base string // "http://127.0.0.1:port"
}

// reply is a decoded API answer.
type reply struct {
	status  int
	header  http.Header
	raw     []byte
	Data    json.RawMessage   `json:"data"`
	Total   *int              `json:"total"`
	Message string            `json:"message"`
	Errors  map[string]string `json:"errors"`
}

// do sends a request: params go into the query string for GET and into a
// form body otherwise. token "" sends no Authorization header.
func (c *apiClient) do(method, path, token string, params url.Values) *reply {
	c.t.Helper()
	u := c.base + path
	var body io.Reader
	if method == http.MethodGet {
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
	} else if len(params) > 0 {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return c.send(req, token)
}

// doForm sends a request with params as a form body, whatever the method.
func (c *apiClient) doForm(method, path, token string, params url.Values) *reply {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(params.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req, token)
}

// doJSON sends a request with a JSON object body.
func (c *apiClient) doJSON(method, path, token string, body any) *reply {
	c.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return c.send(req, token)
}

func (c *apiClient) send(req *http.Request, token string) *reply {
	c.t.Helper()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	r := &reply{status: resp.StatusCode, header: resp.Header}
	if r.raw, err = io.ReadAll(resp.Body); err != nil {
		c.t.Fatalf("%s %s: read: %v", req.Method, req.URL, err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(r.raw, r); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", req.Method, req.URL, r.raw, err)
		}
	}
	return r
}

// ok fails the test unless the answer is 200, and decodes its data into v
// (unless v is nil).
func (r *reply) ok(t *testing.T, v any) *reply {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.raw)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatalf("decode data %s: %v", r.Data, err)
		}
	}
	return r
}

// waitReady waits until /readyz answers 200, failing if the daemon
// process p exits first.
func (c *apiClient) waitReady(p *proc) {
	c.t.Helper()
	c.waitReadyWhile(func() bool {
		if !p.running() {
			c.t.Fatalf("daemon exited with %d:\n%s", p.code, tail(p.stderr.String(), 4000))
		}
		return true
	})
}

// waitReadyWhile waits until /readyz answers 200 while alive returns true.
func (c *apiClient) waitReadyWhile(alive func() bool) {
	c.t.Helper()
	eventually(c.t, 30*time.Second, "/readyz not 200", func() bool {
		if !alive() {
			c.t.Fatal("daemon stopped")
		}
		resp, err := http.Get(c.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// list returns every task the token sees matching params, as tasks.
func (c *apiClient) list(token string, params url.Values) []task.Task {
	c.t.Helper()
	if params == nil {
		params = url.Values{}
	}
	if !params.Has("limit") {
		params.Set("limit", "0")
	}
	var items []api.TaskListItem
	c.do(http.MethodGet, "/api2/json/remotes/tasks/list", token, params).ok(c.t, &items)
	return itemsToTasks(c.t, items)
}

// refreshAll refreshes every remote and waits for it, failing on any
// remote's error.
func (c *apiClient) refreshAll(token string) []api.RefreshResult {
	c.t.Helper()
	var res []api.RefreshResult
	c.do(http.MethodPost, "/api2/json/remotes/tasks/refresh", token, url.Values{"wait": {"1"}}).ok(c.t, &res)
	for _, r := range res {
		if r.Error != "" {
			c.t.Fatalf("refresh %s: %s", r.Remote, r.Error)
		}
	}
	return res
}

// itemsToTasks converts the API's list items back to tasks: the remote
// and the UPID from the remote UPID, the end and status when finished.
// It checks that the item's other fields agree with its UPID.
func itemsToTasks(t *testing.T, items []api.TaskListItem) []task.Task {
	t.Helper()
	out := make([]task.Task, 0, len(items))
	for _, it := range items {
		ru, err := task.ParseRemoteUPID(it.UPID)
		if err != nil {
			t.Fatalf("item upid %q: %v", it.UPID, err)
		}
		u := ru.UPID
		wantID := (*string)(nil)
		if u.ID != "" {
			wantID = &u.ID
		}
		if it.Node != u.Node || it.StartTime != u.StartTime || it.WorkerType != u.Type || it.User != u.User ||
			uint32(it.PID) != u.PID || it.PStart != u.PStart || !equalPtr(it.WorkerID, wantID) {
			t.Fatalf("item %+v disagrees with its upid", it)
		}
		tk := task.Task{Remote: ru.Remote, UPID: u}
		if (it.EndTime == nil) != (it.Status == nil) {
			t.Fatalf("item %s: endtime and status must come together", it.UPID)
		}
		if it.EndTime != nil {
			tk.EndTime, tk.Status = *it.EndTime, *it.Status
		}
		out = append(out, tk)
	}
	return out
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// checkTruth compares the tasks got with the fleet (fleettest.Check).
func checkTruth(t *testing.T, f *sim.Fleet, got []task.Task) {
	t.Helper()
	if diff := fleettest.Check(got, held(f), f.GroundTruth()); diff != "" {
		t.Fatalf("cache differs from the fleet's ground truth: %s", diff)
	}
}

// keys returns the remote UPIDs of tasks, in order.
func keys(ts []task.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.RemoteUPID().String()
	}
	return out
}
