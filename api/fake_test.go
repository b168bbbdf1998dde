package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// fakeBackend is an in-memory Backend that applies filters with
// task.Filter.Match and records what it was asked.
type fakeBackend struct {
	mu      sync.Mutex
	tasks   []task.Task       // newest first
	remotes map[string]string // id → type
	ready   bool

	filters   []task.Filter // every filter of Tasks and Statistics
	tracked   []string      // remote UPIDs passed to Track
	refreshes [][]string    // remotes passed to Refresh
	waits     []bool
	reloads   int

	tasksErr   error // returned by Tasks and Statistics
	trackErr   error
	refreshErr error
	reloadErr  error
	leak       bool // ignore Filter.Scope, like a buggy backend
	panics     bool // Tasks panics
}

func (b *fakeBackend) Tasks(_ context.Context, f task.Filter) (task.Page, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.filters = append(b.filters, f)
	if b.panics {
		panic("fake backend panic")
	}
	if b.tasksErr != nil {
		return task.Page{}, b.tasksErr
	}
	match := b.matching(f)
	page := task.Page{Total: len(match)}
	if f.Start < len(match) {
		match = match[f.Start:]
		if f.Limit > 0 && f.Limit < len(match) {
			match = match[:f.Limit]
		}
		page.Tasks = match
	}
	return page, nil
}

func (b *fakeBackend) matching(f task.Filter) []task.Task {
	if b.leak {
		f.Scope = nil
	}
	var out []task.Task
	for _, t := range b.tasks {
		if f.Match(&t) {
			out = append(out, t)
		}
	}
	return out
}

func (b *fakeBackend) Statistics(_ context.Context, f task.Filter) (task.Statistics, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.filters = append(b.filters, f)
	if b.tasksErr != nil {
		return task.Statistics{}, b.tasksErr
	}
	st := task.Statistics{ByType: map[string]task.Counts{}, ByRemote: map[string]task.Counts{}}
	for _, t := range b.matching(f) {
		if t.Running() {
			continue
		}
		c := st.ByType[t.UPID.Type]
		c.Add(t.Class())
		st.ByType[t.UPID.Type] = c
		c = st.ByRemote[t.Remote]
		c.Add(t.Class())
		st.ByRemote[t.Remote] = c
	}
	return st, nil
}

func (b *fakeBackend) Track(_ context.Context, remote string, upid task.UPID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.trackErr != nil {
		return b.trackErr
	}
	if _, ok := b.remotes[remote]; !ok {
		return fmt.Errorf("track %s: %w", remote, ErrUnknownRemote)
	}
	b.tracked = append(b.tracked, task.RemoteUPID{Remote: remote, UPID: upid}.String())
	return nil
}

func (b *fakeBackend) Untrack(_ context.Context, remote string, upid task.UPID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.remotes[remote]; !ok {
		return fmt.Errorf("untrack %s: %w", remote, ErrUnknownRemote)
	}
	ru := task.RemoteUPID{Remote: remote, UPID: upid}.String()
	i := slices.Index(b.tracked, ru)
	if i < 0 {
		return fmt.Errorf("untrack %s: %w", ru, ErrNotTracked)
	}
	b.tracked = slices.Delete(b.tracked, i, i+1)
	return nil
}

func (b *fakeBackend) Refresh(ctx context.Context, wait bool, remotes ...string) ([]RefreshResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshes = append(b.refreshes, remotes)
	b.waits = append(b.waits, wait)
	if b.refreshErr != nil {
		return nil, b.refreshErr
	}
	if len(remotes) == 0 {
		for id := range b.remotes {
			remotes = append(remotes, id)
		}
		slices.Sort(remotes)
	}
	var out []RefreshResult
	for _, id := range remotes {
		r := RefreshResult{Remote: id, Tasks: 3, Duration: 0.25}
		if id == "west" {
			r = RefreshResult{Remote: id, Error: "connect: connection refused", Duration: 1.5}
		}
		out = append(out, r)
	}
	return out, nil
}

func (b *fakeBackend) Remotes(context.Context) []RemoteStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []RemoteStatus
	for id, typ := range b.remotes {
		st := RemoteStatus{Remote: id, Type: typ, State: "ok", LastSuccess: 1700000000, LastFetchDuration: 0.5, TasksFetched: 10}
		if id == "east" {
			st.Nodes = []string{"pve1", "pve2"}
			st.Tracked = []string{"pve:east!UPID:pve1:00000001:00000002:65000000:vzdump::root@pam:"}
		}
		if id == "west" {
			st.State, st.LastError, st.LastErrorTime, st.ConsecutiveFailures = "failing", "timeout", 1700000100, 3
		}
		out = append(out, st)
	}
	return out
}

func (b *fakeBackend) Reload(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	return b.reloadErr
}

func (b *fakeBackend) Ready(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ready {
		return errors.New("cache writes failing (no_space): write /cache/journal: no space left on device")
	}
	return nil
}

func (b *fakeBackend) HasRemote(_ context.Context, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.remotes[id]
	return ok
}

// lastFilter returns the filter of the latest Tasks or Statistics call.
func (b *fakeBackend) lastFilter(t *testing.T) task.Filter {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.filters) == 0 {
		t.Fatal("backend was not queried")
	}
	return b.filters[len(b.filters)-1]
}

// calls returns how many filters the backend saw.
func (b *fakeBackend) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.filters)
}

// mustUPID parses a UPID or fails the test.
func mustUPID(t testing.TB, s string) task.UPID {
	t.Helper()
	u, err := task.ParseUPID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newFake returns a backend with three remotes and six tasks.
func newFake(t testing.TB) *fakeBackend {
	mk := func(remote, upid string, end int64, status string) task.Task {
		return task.Task{Remote: remote, UPID: mustUPID(t, upid), EndTime: end, Status: status}
	}
	tasks := []task.Task{
		mk("east", "UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:", 0, ""),
		mk("bak", "UPID:pbs:00000100:00000200:00000001:66000400:garbage_collection:store1:root@pam:", 1711276100, "OK"),
		mk("west", "UPID:pve7:00002000:00B00000:66000300:qmstart:200:alice@pve!tok:", 1711276000, "WARNINGS: 1"),
		mk("east", "UPID:pve2:00003000:00C00000:66000200:qmigrate:101:bob@pam:", 1711275900, "migration aborted"),
		mk("east", "UPID:pve1:00004000:00D00000:66000100:aptupdate::root@pam:", 1711275800, "OK"),
		mk("west", "UPID:pve8:00005000:00E00000:66000000:vzdump::root@pam:", 1711275700, "OK"),
	}
	slices.SortStableFunc(tasks, task.Compare)
	return &fakeBackend{
		tasks:   tasks,
		remotes: map[string]string{"east": "pve", "west": "pve", "bak": "pbs"},
		ready:   true,
	}
}
