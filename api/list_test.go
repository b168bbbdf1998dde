package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

func TestListDefaults(t *testing.T) {
	b := newFake(t)
	h := New(b, Options{})
	a := get(t, h, "/api2/json/remotes/tasks/list").wantStatus(t, http.StatusOK)
	if a.Total == nil || *a.Total != 6 {
		t.Errorf("total = %v, want 6", a.Total)
	}
	if f := b.lastFilter(t); !reflect.DeepEqual(f, task.NewFilter()) {
		t.Errorf("filter = %+v, want task.NewFilter()", f)
	}
	want := []string{
		"pve:east!UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:",
		"pbs:bak!UPID:pbs:00000100:00000200:00000001:66000400:garbage_collection:store1:root@pam:",
		"pve:west!UPID:pve7:00002000:00B00000:66000300:qmstart:200:alice@pve!tok:",
		"pve:east!UPID:pve2:00003000:00C00000:66000200:qmigrate:101:bob@pam:",
		"pve:east!UPID:pve1:00004000:00D00000:66000100:aptupdate::root@pam:",
		"pve:west!UPID:pve8:00005000:00E00000:66000000:vzdump::root@pam:",
	}
	if got := a.upids(t); !slices.Equal(got, want) {
		t.Errorf("upids:\n%s\nwant newest first:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// TestListItemJSON checks PDM's field names and which fields appear.
func TestListItemJSON(t *testing.T) {
	b := newFake(t)
	h := New(b, Options{})
	var items []map[string]any
	get(t, h, "/api2/json/remotes/tasks/list").wantStatus(t, http.StatusOK).decode(t, &items)
	want := []string{
		// running: no endtime, no status
		`{"node":"pve1","pid":4096,"pstart":10485760,"starttime":1711277312,"upid":"pve:east!UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:","user":"root@pam","worker_id":"100","worker_type":"vzdump"}`,
		`{"endtime":1711276100,"node":"pbs","pid":256,"pstart":512,"starttime":1711277056,"status":"OK","upid":"pbs:bak!UPID:pbs:00000100:00000200:00000001:66000400:garbage_collection:store1:root@pam:","user":"root@pam","worker_id":"store1","worker_type":"garbage_collection"}`,
	}
	for i, w := range want {
		got, _ := json.Marshal(items[i])
		if string(got) != w {
			t.Errorf("item %d:\n%s\nwant\n%s", i, got, w)
		}
	}
	// A task without worker id has "worker_id": null, as PDM sends it.
	if v, ok := items[4]["worker_id"]; !ok || v != nil {
		t.Errorf("item 4 worker_id = %v (present %v), want null", v, ok)
	}
}

func TestListFilters(t *testing.T) {
	cases := []struct {
		query string
		want  func(f *task.Filter)
	}{
		{query: "start=2&limit=0", want: func(f *task.Filter) { f.Start, f.Limit = 2, 0 }},
		{query: "errors=1&running=false", want: func(f *task.Filter) { f.Errors = true }},
		{query: "running=true", want: func(f *task.Filter) { f.Running = true }},
		{query: "running=1&errors=0", want: func(f *task.Filter) { f.Running = true }},
		{query: "userfilter=Alice&typefilter=vz", want: func(f *task.Filter) { f.UserFilter, f.TypeFilter = "Alice", "vz" }},
		{query: "since=1711275800&until=1711277000", want: func(f *task.Filter) { f.Since, f.Until = 1711275800, 1711277000 }},
		{query: "statusfilter=ok&statusfilter=WARNING", want: func(f *task.Filter) {
			f.StatusFilter = f.StatusFilter.Add(task.StatusOK).Add(task.StatusWarning)
		}},
		{query: "statusfilter=error,Unknown", want: func(f *task.Filter) {
			f.StatusFilter = f.StatusFilter.Add(task.StatusError).Add(task.StatusUnknown)
		}},
		{query: "statusfilter=", want: func(*task.Filter) {}},
		{query: "remote=east&node=pve1", want: func(f *task.Filter) { f.Remote, f.Node = "east", "pve1" }},
		{query: "_dc=1711277000123", want: func(*task.Filter) {}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			b := newFake(t)
			get(t, New(b, Options{}), "/api2/json/remotes/tasks/list?"+c.query).wantStatus(t, http.StatusOK)
			want := task.NewFilter()
			c.want(&want)
			if got := b.lastFilter(t); !reflect.DeepEqual(got, want) {
				t.Errorf("filter = %+v, want %+v", got, want)
			}
		})
	}
}

func TestListPagingAndFiltering(t *testing.T) {
	h := New(newFake(t), Options{})
	a := get(t, h, "/api2/json/remotes/tasks/list?start=1&limit=2").wantStatus(t, http.StatusOK)
	if got := a.remotesOf(t); !slices.Equal(got, []string{"bak", "west"}) || *a.Total != 6 {
		t.Errorf("start=1 limit=2: remotes %v total %d", got, *a.Total)
	}
	a = get(t, h, "/api2/json/remotes/tasks/list?remote=west").wantStatus(t, http.StatusOK)
	if got := a.remotesOf(t); !slices.Equal(got, []string{"west", "west"}) || *a.Total != 2 {
		t.Errorf("remote=west: remotes %v total %d", got, *a.Total)
	}
	a = get(t, h, "/api2/json/remotes/tasks/list?start=10").wantStatus(t, http.StatusOK)
	if string(a.Data) != "[]" {
		t.Errorf("past the end: data %s, want []", a.Data)
	}
}

func TestStatistics(t *testing.T) {
	b := newFake(t)
	h := New(b, Options{})
	a := get(t, h, "/api2/json/remotes/tasks/statistics?typefilter=vz").wantStatus(t, http.StatusOK)
	want := `{"by-type":{"vzdump":{"ok":1,"warning":0,"error":0,"unknown":0}},"by-remote":{"west":{"ok":1,"warning":0,"error":0,"unknown":0}}}`
	if string(a.Data) != want {
		t.Errorf("data = %s\nwant %s", a.Data, want)
	}
	if f := b.lastFilter(t); f.TypeFilter != "vz" || f.Limit != task.DefaultLimit {
		t.Errorf("filter = %+v", f)
	}
	a = get(t, h, "/api2/json/remotes/tasks/statistics?running=1").wantStatus(t, http.StatusOK)
	if want := `{"by-type":{},"by-remote":{}}`; string(a.Data) != want {
		t.Errorf("no finished task: data = %s, want %s", a.Data, want)
	}
}

func TestUnknownRemote(t *testing.T) {
	h := New(newFake(t), Options{})
	for _, c := range []call{
		{target: "/api2/json/remotes/tasks/list?remote=nope"},
		{target: "/api2/json/remotes/tasks/statistics?remote=nope"},
		{method: http.MethodPost, target: "/api2/json/remotes/tasks/refresh?remotes=east,nope"},
		{method: http.MethodPost, target: "/api2/json/remotes/tasks/track?remote=nope&upid=UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:"},
	} {
		a := c.do(t, h).wantStatus(t, http.StatusNotFound)
		if a.Msg != "no such remote 'nope'" || string(a.Data) != "null" {
			t.Errorf("%s: message %q data %s", c.target, a.Msg, a.Data)
		}
	}
}

func TestBackendError(t *testing.T) {
	b := newFake(t)
	b.tasksErr = errors.New("snapshot unavailable")
	h := New(b, Options{})
	for _, target := range []string{"/api2/json/remotes/tasks/list", "/api2/json/remotes/tasks/statistics"} {
		a := get(t, h, target).wantStatus(t, http.StatusInternalServerError)
		if strings.Contains(a.Msg, "snapshot unavailable") || !strings.Contains(a.Msg, a.header.Get("X-Request-Id")) {
			t.Errorf("%s: message %q: want a generic message with the request id", target, a.Msg)
		}
	}
}
