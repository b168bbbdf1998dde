package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestRefresh(t *testing.T) {
	const refresh = "/api2/json/remotes/tasks/refresh"
	cases := []struct {
		name    string
		call    call
		remotes []string
		wait    bool
	}{
		{name: "all", call: call{target: refresh}},
		{name: "repeated", call: call{target: refresh + "?remotes=east&remotes=bak&wait=1"}, remotes: []string{"east", "bak"}, wait: true},
		{name: "comma separated", call: call{target: refresh + "?remotes=east,bak,east"}, remotes: []string{"east", "bak"}},
		{name: "form", call: call{target: refresh, body: "remotes=bak&wait=true"}, remotes: []string{"bak"}, wait: true},
		{name: "json", call: call{target: refresh, contentType: "application/json", body: `{"remotes": ["west", "east"], "wait": true}`}, remotes: []string{"west", "east"}, wait: true},
		{name: "json wait 0", call: call{target: refresh, contentType: "application/json", body: `{"wait": 0}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFake(t)
			c.call.method = http.MethodPost
			a := c.call.do(t, New(b, Options{})).wantStatus(t, http.StatusOK)
			if len(b.refreshes) != 1 || !slices.Equal(b.refreshes[0], c.remotes) || b.waits[0] != c.wait {
				t.Fatalf("backend Refresh(wait %v, %v), want (wait %v, %v)", b.waits, b.refreshes, c.wait, c.remotes)
			}
			var results []RefreshResult
			a.decode(t, &results)
			if len(c.remotes) > 0 && len(results) != len(c.remotes) {
				t.Errorf("results %+v for remotes %v", results, c.remotes)
			}
		})
	}
}

func TestRefreshResultJSON(t *testing.T) {
	a := call{method: http.MethodPost, target: "/api2/json/remotes/tasks/refresh?remotes=east,west&wait=1"}.
		do(t, New(newFake(t), Options{})).wantStatus(t, http.StatusOK)
	want := `[{"remote":"east","tasks":3,"duration":0.25},{"remote":"west","error":"connect: connection refused","tasks":0,"duration":1.5}]`
	if string(a.Data) != want {
		t.Errorf("data = %s\nwant %s", a.Data, want)
	}
}

func TestRefreshErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
	}{
		{err: fmt.Errorf("refresh: %w", ErrUnknownRemote), status: http.StatusNotFound},
		{err: context.DeadlineExceeded, status: http.StatusInternalServerError},
	} {
		b := newFake(t)
		b.refreshErr = c.err
		call{method: http.MethodPost, target: "/api2/json/remotes/tasks/refresh?remotes=east"}.
			do(t, New(b, Options{})).wantStatus(t, c.status)
	}
}

func TestTrack(t *testing.T) {
	const (
		track  = "/api2/json/remotes/tasks/track"
		native = "UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:"
		qual   = "pve:east!" + native
		pbs    = "UPID:pbs:00000100:00000200:00000001:66000400:garbage_collection:store1:root@pam:"
	)
	ok := []struct {
		name string
		call call
		want string
	}{
		{name: "native upid and remote", call: call{target: track + "?remote=east&upid=" + native}, want: qual},
		{name: "qualified upid", call: call{target: track, body: "upid=" + qual}, want: qual},
		{name: "qualified upid and same remote", call: call{target: track, contentType: "application/json", body: `{"remote": "east", "upid": "` + qual + `"}`}, want: qual},
		{name: "pbs", call: call{target: track, contentType: "application/json", body: `{"remote": "bak", "upid": "` + pbs + `"}`}, want: "pbs:bak!" + pbs},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			b := newFake(t)
			c.call.method = http.MethodPost
			a := c.call.do(t, New(b, Options{})).wantStatus(t, http.StatusOK)
			var got string
			a.decode(t, &got)
			if got != c.want || !slices.Equal(b.tracked, []string{c.want}) {
				t.Errorf("data %q, backend tracked %v; want %s", got, b.tracked, c.want)
			}
		})
	}
	bad := []struct {
		name   string
		query  string
		params []string
	}{
		{name: "nothing", query: "", params: []string{"upid", "remote"}},
		{name: "native without remote", query: "upid=" + native, params: []string{"remote"}},
		{name: "remote mismatch", query: "remote=west&upid=" + qual, params: []string{"upid"}},
		{name: "bad upid", query: "remote=east&upid=UPID:nope", params: []string{"upid"}},
		{name: "bad qualified upid", query: "upid=pve:east!UPID:nope", params: []string{"upid"}},
		{name: "type mismatch", query: "upid=pbs:east!" + native, params: []string{"upid"}},
		{name: "upid twice", query: "remote=east&upid=" + native + "&upid=" + native, params: []string{"upid"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			b := newFake(t)
			a := call{method: http.MethodPost, target: track + "?" + c.query}.do(t, New(b, Options{})).wantStatus(t, http.StatusBadRequest)
			for _, p := range c.params {
				if _, ok := a.Errors[p]; !ok {
					t.Errorf("errors %v do not name %s", a.Errors, p)
				}
			}
			if len(a.Errors) != len(c.params) {
				t.Errorf("errors %v, want only %v", a.Errors, c.params)
			}
			if len(b.tracked) != 0 {
				t.Error("backend tracked a task")
			}
		})
	}
}

func TestTrackBackendErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
	}{
		{err: fmt.Errorf("track: %w", ErrUnknownRemote), status: http.StatusNotFound},
		{err: fmt.Errorf("pbs upid for a pve remote: %w", ErrInvalidTask), status: http.StatusBadRequest},
		{err: errors.New("poller stopped"), status: http.StatusInternalServerError},
	} {
		b := newFake(t)
		b.trackErr = c.err
		a := call{method: http.MethodPost, target: "/api2/json/remotes/tasks/track?remote=east&upid=UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:"}.
			do(t, New(b, Options{})).wantStatus(t, c.status)
		if c.status == http.StatusBadRequest && a.Errors["upid"] == "" {
			t.Errorf("ErrInvalidTask: errors %v do not name upid", a.Errors)
		}
	}
}

func TestStatus(t *testing.T) {
	a := get(t, New(newFake(t), Options{}), "/api2/json/remotes/status").wantStatus(t, http.StatusOK)
	want := `[` +
		`{"remote":"bak","type":"pbs","state":"ok","last_success":1700000000,"consecutive_failures":0,"last_fetch_duration":0.5,"nodes":[],"tracked":[],"tasks_fetched":10},` +
		`{"remote":"east","type":"pve","state":"ok","last_success":1700000000,"consecutive_failures":0,"last_fetch_duration":0.5,"nodes":["pve1","pve2"],"tracked":["pve:east!UPID:pve1:00000001:00000002:65000000:vzdump::root@pam:"],"tasks_fetched":10},` +
		`{"remote":"west","type":"pve","state":"failing","last_success":1700000000,"last_error":"timeout","last_error_time":1700000100,"consecutive_failures":3,"last_fetch_duration":0.5,"nodes":[],"tracked":[],"tasks_fetched":10}` +
		`]`
	if string(a.Data) != want {
		t.Errorf("data =\n%s\nwant\n%s", a.Data, want)
	}
}

func TestReload(t *testing.T) {
	b := newFake(t)
	h := New(b, Options{Tokens: tokens})
	a := call{method: http.MethodPost, target: "/api2/json/reload", token: adminSecret}.do(t, h).wantStatus(t, http.StatusOK)
	if string(a.Data) != "null" || b.reloads != 1 {
		t.Errorf("reload: data %s, backend reloads %d", a.Data, b.reloads)
	}
	b.reloadErr = fmt.Errorf("%w: %w", ErrConfigRejected, errors.New("taskfleet.toml:3: server.listen: want host:port"))
	a = call{method: http.MethodPost, target: "/api2/json/reload", token: adminSecret}.do(t, h).wantStatus(t, http.StatusUnprocessableEntity)
	if !strings.Contains(a.Msg, "reload rejected") || !strings.Contains(a.Msg, "taskfleet.toml:3: server.listen: want host:port") {
		t.Errorf("message = %q", a.Msg)
	}
	// Any other failure is a 5xx: the client gets the request id only.
	b.reloadErr = errors.New("actor system: stop timed out")
	a = call{method: http.MethodPost, target: "/api2/json/reload", token: adminSecret}.do(t, h).wantStatus(t, http.StatusInternalServerError)
	if id := a.header.Get("X-Request-Id"); id == "" || !strings.Contains(a.Msg, id) || strings.Contains(a.Msg, "actor") {
		t.Errorf("message = %q, request id %q", a.Msg, id)
	}
}
