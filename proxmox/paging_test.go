package proxmox

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

const since = 1_700_000_000

// pagingClient serves f's node "pve1" (or the PBS server) in memory.
func pagingClient(t *testing.T, f *fakeRemote, pageSize int) *Client {
	t.Helper()
	n := newMemNet()
	srv := startMem(t, n, "pve1.test:8006", f.handler("pve1"))
	cfg := testConfig(f.kind, srv.endpoint())
	cfg.DialContext = n.DialContext
	cfg.PageSize = pageSize
	return newTestClient(t, cfg)
}

// fillNode gives node a realistic mix: running tasks, finished tasks whose
// finish order differs from their start order, tasks sharing the since
// second, tasks one second before it (excluded) and API-token tasks.
func fillNode(f *fakeRemote, node string, running, finished int) {
	type fin struct {
		start, end int64
		i          int
	}
	var done []fin
	for i := range finished {
		start := int64(since + 10 + i*60)
		done = append(done, fin{start: start, end: start + int64((i*7919)%3000), i: i})
	}
	for i := range 12 { // twelve tasks in the since second
		done = append(done, fin{start: since, end: since + int64(100+i*13), i: 1000 + i})
	}
	for i := range 4 { // started one second too early
		done = append(done, fin{start: since - 1, end: since + int64(50+i), i: 2000 + i})
	}
	// The index holds tasks in finish order.
	for len(done) > 0 {
		best := 0
		for j, d := range done {
			if d.end < done[best].end {
				best = j
			}
		}
		d := done[best]
		done = append(done[:best], done[best+1:]...)
		user, status := "root@pam", "OK"
		if d.i%5 == 0 {
			user = "monitor@pve!poller"
		}
		if d.i%11 == 0 {
			status = "WARNINGS: 2"
		}
		if d.i%13 == 0 {
			status = "unable to open file - No such file or directory"
		}
		f.add(node, d.start, d.end, "vzdump", fmt.Sprint(100+d.i%50), user, status)
	}
	for i := range running {
		f.add(node, int64(since+20+i*30), 0, "qmigrate", fmt.Sprint(200+i), "root@pam", "")
	}
}

// checkExactlyOnce checks that got holds every task of want once, with its
// state, and nothing else.
func checkExactlyOnce(t *testing.T, got []task.Task, want map[string]task.Task) {
	t.Helper()
	seen := map[string]bool{}
	for _, g := range got {
		k := g.UPID.String()
		if seen[k] {
			t.Errorf("task %s twice", k)
		}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			t.Errorf("unexpected task %s", k)
			continue
		}
		if g != w {
			t.Errorf("task %s = %+v, want %+v", k, g, w)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("task %s missing", k)
		}
	}
}

// expectedPages is the number of requests for n tasks in a list that does
// not change.
func expectedPages(n, limit int) int {
	overlap := min(max(1, limit/10), limit-1)
	pages, start := 0, 0
	for {
		pages++
		if n-start < limit {
			return pages
		}
		start += limit - overlap
	}
}

func TestFetchTasksStatic(t *testing.T) {
	for _, kind := range []task.Kind{task.PVE, task.PBS} {
		for _, size := range []int{1, 3, 10, 500} {
			t.Run(fmt.Sprintf("%v/page%d", kind, size), func(t *testing.T) {
				f := newFakeRemote(kind, "pve1")
				fillNode(f, "pve1", 6, 60)
				want := f.want("pve1", since)
				c := pagingClient(t, f, size)
				res, err := c.FetchTasks(context.Background(), "pve1", since)
				if err != nil {
					t.Fatal(err)
				}
				checkExactlyOnce(t, res.Tasks, want)
				if len(want) != 6+60+12 {
					t.Fatalf("fixture has %d tasks in the window", len(want))
				}
				if p := expectedPages(len(want), size); res.Requests != p || res.Resyncs != 0 {
					t.Errorf("%d requests, %d resyncs; want %d requests, 0 resyncs", res.Requests, res.Resyncs, p)
				}
			})
		}
	}
}

// TestFetchTasksArrivals: between pages new tasks start, new ones finish
// and running ones finish. Every task present when the fetch began is in
// the result exactly once, in its first or its last state, and nothing is
// in it that the node never had.
func TestFetchTasksArrivals(t *testing.T) {
	for _, kind := range []task.Kind{task.PVE, task.PBS} {
		t.Run(kind.String(), func(t *testing.T) {
			f := newFakeRemote(kind, "pve1")
			fillNode(f, "pve1", 8, 120)
			initial := f.want("pve1", since)
			clock := int64(since + 100_000)
			f.beforeList = func(f *fakeRemote, n int) {
				if n < 2 {
					return
				}
				clock += 10
				f.add("pve1", since, clock, "vzdump", "990", "root@pam", "OK") // another one in the since second
				f.add("pve1", clock-5, clock, "qmstart", "101", "root@pam", "OK")
				f.add("pve1", clock, 0, "vzdump", "102", "root@pam", "")
				if r := f.running("pve1"); len(r) > 0 {
					f.finish(r[0], clock+1, "OK")
				}
			}
			c := pagingClient(t, f, 10)
			res, err := c.FetchTasks(context.Background(), "pve1", since)
			if err != nil {
				t.Fatal(err)
			}
			final := f.want("pve1", since)
			seen := map[string]bool{}
			for _, g := range res.Tasks {
				k := g.UPID.String()
				if seen[k] {
					t.Errorf("task %s twice", k)
				}
				seen[k] = true
				if g != initial[k] && g != final[k] {
					t.Errorf("task %s = %+v, neither %+v nor %+v", k, g, initial[k], final[k])
				}
			}
			for k := range initial {
				if !seen[k] {
					t.Errorf("task %s of the initial set missing", k)
				}
			}
			t.Logf("%d tasks at start, %d at the end, fetched %d in %d requests (%d resyncs)",
				len(initial), len(final), len(res.Tasks), res.Requests, res.Resyncs)
		})
	}
}

// runningShift sets up the trap the overlap exists for: more running tasks
// than a page, and before every page three of those already listed finish,
// which moves the rest of the running part up by three.
func runningShift(kind task.Kind) *fakeRemote {
	f := newFakeRemote(kind, "pve1")
	fillNode(f, "pve1", 40, 100)
	f.beforeList = func(f *fakeRemote, n int) {
		if n < 2 {
			return
		}
		r := f.running("pve1")
		for i := 0; i < 3 && i < len(r); i++ {
			f.finish(r[i], int64(since+200_000+n*10+i), "OK")
		}
	}
	return f
}

func TestFetchTasksRunningShift(t *testing.T) {
	for _, kind := range []task.Kind{task.PVE, task.PBS} {
		t.Run(kind.String(), func(t *testing.T) {
			// A pager that trusts offsets loses tasks here.
			naive := runningShift(kind)
			initial := naive.want("pve1", since)
			c := pagingClient(t, naive, 10)
			got := map[string]bool{}
			for start := 0; ; {
				page, err := c.ListTasks(context.Background(), "pve1", ListQuery{Since: since, Start: start, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				for _, tk := range page.Tasks {
					got[tk.UPID.String()] = true
				}
				if page.Returned < 10 {
					break
				}
				start += page.Returned
			}
			lost := 0
			for k := range initial {
				if !got[k] {
					lost++
				}
			}
			if lost == 0 {
				t.Fatal("the scenario does not move the list: it tests nothing")
			}

			f := runningShift(kind)
			c = pagingClient(t, f, 10)
			res, err := c.FetchTasks(context.Background(), "pve1", since)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, g := range res.Tasks {
				if seen[g.UPID.String()] {
					t.Errorf("task %s twice", g.UPID)
				}
				seen[g.UPID.String()] = true
			}
			for k := range initial {
				if !seen[k] {
					t.Errorf("task %s missing", k)
				}
			}
			if res.Resyncs == 0 {
				t.Error("no resync: the list moved up by more than the overlap unnoticed")
			}
			t.Logf("offset paging lost %d of %d tasks; FetchTasks lost none in %d requests (%d resyncs)",
				lost, len(initial), res.Requests, res.Resyncs)
		})
	}
}

func TestFetchTasksIgnoresStart(t *testing.T) {
	f := newFakeRemote(task.PVE, "pve1")
	fillNode(f, "pve1", 0, 50)
	f.ignoreStart = true
	c := pagingClient(t, f, 10)
	res, err := c.FetchTasks(context.Background(), "pve1", since)
	var pe *PagingError
	if !errors.As(err, &pe) || pe.Pages != 1+staleLimit || ErrorKind(err) != "malformed" || pe.Endpoint != "https://pve1.test:8006/api2/json/nodes/pve1/tasks" {
		t.Fatalf("want PagingError after %d pages, got %v", 1+staleLimit, err)
	}
	if res.Requests != 1+staleLimit || len(res.Tasks) != 10 {
		t.Errorf("result: %d requests, %d tasks", res.Requests, len(res.Tasks))
	}
	t.Log(err)
}

func TestFetchTasksMaxPages(t *testing.T) {
	f := newFakeRemote(task.PVE, "pve1")
	fillNode(f, "pve1", 0, 100)
	n := newMemNet()
	srv := startMem(t, n, "pve1.test:8006", f.handler("pve1"))
	cfg := testConfig(task.PVE, srv.endpoint())
	cfg.DialContext, cfg.PageSize, cfg.MaxPages = n.DialContext, 10, 3
	c := newTestClient(t, cfg)
	res, err := c.FetchTasks(context.Background(), "pve1", since)
	var pe *PagingError
	if !errors.As(err, &pe) || pe.Pages != 3 || res.Requests != 3 {
		t.Fatalf("want PagingError after 3 pages, got %v (%d requests)", err, res.Requests)
	}
}

// TestFetchTasksSkippedOnce: a malformed item that sits in the overlap of
// two pages is reported once, and the rest of both pages is kept.
func TestFetchTasksSkippedOnce(t *testing.T) {
	f := newFakeRemote(task.PVE, "pve1")
	fillNode(f, "pve1", 0, 40)
	want := f.want("pve1", since)
	// The 10th item of the list (the overlap of pages 1 and 2 for pages of
	// 10) loses its start time.
	all := f.node("pve1").archive
	bad := all[len(all)-10].upid
	delete(want, bad.String())
	f.mangle = func(m map[string]any) {
		if m["upid"] == bad.String() {
			delete(m, "starttime")
		}
	}
	c := pagingClient(t, f, 10)
	res, err := c.FetchTasks(context.Background(), "pve1", since)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, res.Tasks, want)
	var ie *ItemError
	if len(res.Skipped) != 1 || !errors.As(res.Skipped[0], &ie) || ie.UPID != bad.String() {
		t.Fatalf("skipped = %v, want one error for %s", res.Skipped, bad)
	}
	t.Log(res.Skipped[0])
}
