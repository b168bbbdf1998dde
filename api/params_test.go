package api

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestParameterForms gives the same parameters in the query string, as a
// form body, as a JSON body and mixed: the backend must see one filter.
func TestParameterForms(t *testing.T) {
	want := task.NewFilter()
	want.Start, want.Limit, want.Errors, want.Since, want.Remote = 1, 0, true, 1711275800, "east"
	want.StatusFilter = want.StatusFilter.Add(task.StatusOK).Add(task.StatusError)
	const form = "start=1&limit=0&errors=1&since=1711275800&remote=east&statusfilter=ok&statusfilter=error"
	const list = "/api2/json/remotes/tasks/list"
	cases := []struct {
		name string
		call call
	}{
		{name: "query", call: call{target: list + "?" + form}},
		{name: "form", call: call{target: list, body: form, contentType: "application/x-www-form-urlencoded"}},
		{name: "form without content type", call: call{target: list, body: form}},
		{name: "json", call: call{target: list, contentType: "application/json",
			body: `{"start": 1, "limit": 0, "errors": true, "since": 1711275800, "remote": "east", "statusfilter": ["ok", "error"]}`}},
		{name: "json strings", call: call{target: list, contentType: "application/json; charset=utf-8",
			body: `{"start": "1", "limit": "0", "errors": "1", "since": "1711275800", "remote": "east", "statusfilter": "ok,error", "userfilter": null}`}},
		{name: "mixed", call: call{target: list + "?start=1&limit=0&statusfilter=ok", contentType: "application/json",
			body: `{"errors": 1, "since": 1711275800, "remote": "east", "statusfilter": "error"}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFake(t)
			c.call.do(t, New(b, Options{})).wantStatus(t, http.StatusOK)
			if got := b.lastFilter(t); !reflect.DeepEqual(got, want) {
				t.Errorf("filter = %+v\nwant     %+v", got, want)
			}
		})
	}
}

func TestBadParameters(t *testing.T) {
	const list = "/api2/json/remotes/tasks/list"
	cases := []struct {
		name  string
		call  call
		param string // the parameter named in errors
		why   string // part of its message
	}{
		{name: "negative limit", call: call{target: list + "?limit=-1"}, param: "limit", why: "minimum value of 0"},
		{name: "limit not a number", call: call{target: list + "?limit=ten"}, param: "limit", why: "type check ('integer') failed - got 'ten'"},
		{name: "negative start", call: call{target: list + "?start=-5"}, param: "start", why: "minimum value of 0"},
		{name: "since not a number", call: call{target: list + "?since=abc"}, param: "since", why: "'integer'"},
		{name: "until a float", call: call{target: list + "?until=1.5"}, param: "until", why: "'integer'"},
		{name: "bad boolean", call: call{target: list + "?errors=maybe"}, param: "errors", why: "type check ('boolean') failed - got 'maybe'"},
		{name: "bad status", call: call{target: list + "?statusfilter=ok,bogus"}, param: "statusfilter", why: "value 'bogus' does not have a value in the enumeration"},
		{name: "unknown parameter", call: call{target: list + "?lmit=5"}, param: "lmit", why: "property is not defined in schema"},
		{name: "PDM view is not supported", call: call{target: list + "?view=x"}, param: "view", why: "not defined"},
		{name: "bad remote id", call: call{target: list + "?remote=../etc"}, param: "remote", why: "not allowed"},
		{name: "bad node", call: call{target: list + "?node=-pve1"}, param: "node", why: "invalid node name"},
		{name: "limit twice", call: call{target: list + "?limit=5&limit=6"}, param: "limit", why: "given 2 times"},
		{name: "query and body both", call: call{target: list + "?limit=5", body: "limit=6"}, param: "limit", why: "given 2 times"},
		{name: "json object value", call: call{target: list, contentType: "application/json", body: `{"limit": {"n": 5}}`}, param: "limit", why: "want a string, number or boolean"},
		{name: "json null in list", call: call{target: list, contentType: "application/json", body: `{"statusfilter": ["ok", null]}`}, param: "statusfilter", why: "want a string"},
		{name: "json float limit", call: call{target: list, contentType: "application/json", body: `{"limit": 2.5}`}, param: "limit", why: "got '2.5'"},
		{name: "status parameters", call: call{target: "/api2/json/remotes/status?verbose=1"}, param: "verbose", why: "not defined"},
		{name: "refresh wait", call: call{method: http.MethodPost, target: "/api2/json/remotes/tasks/refresh?wait=soon"}, param: "wait", why: "'boolean'"},
		{name: "refresh remote id", call: call{method: http.MethodPost, target: "/api2/json/remotes/tasks/refresh?remotes=east,a/b"}, param: "remotes", why: "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFake(t)
			a := c.call.do(t, New(b, Options{})).wantStatus(t, http.StatusBadRequest)
			if a.Msg != "Parameter verification failed." {
				t.Errorf("message = %q", a.Msg)
			}
			if why, ok := a.Errors[c.param]; !ok || !strings.Contains(why, c.why) {
				t.Errorf("errors = %v, want %s: ...%s...", a.Errors, c.param, c.why)
			}
			if b.calls() != 0 || len(b.refreshes) != 0 {
				t.Error("the backend was called despite bad parameters")
			}
		})
	}
}

// TestEveryBadParameterIsNamed checks that all bad parameters are reported
// at once, not only the first.
func TestEveryBadParameterIsNamed(t *testing.T) {
	a := get(t, New(newFake(t), Options{}), "/api2/json/remotes/tasks/list?limit=-1&since=abc&statusfilter=bogus&x=1").
		wantStatus(t, http.StatusBadRequest)
	for _, p := range []string{"limit", "since", "statusfilter", "x"} {
		if _, ok := a.Errors[p]; !ok {
			t.Errorf("no error for %s in %v", p, a.Errors)
		}
	}
}

func TestBadBodies(t *testing.T) {
	const list = "/api2/json/remotes/tasks/list"
	cases := []struct {
		name   string
		call   call
		status int
		msg    string
	}{
		{name: "invalid json", call: call{target: list, contentType: "application/json", body: `{"limit": `}, status: http.StatusBadRequest, msg: "invalid JSON body"},
		{name: "json array", call: call{target: list, contentType: "application/json", body: `[1, 2]`}, status: http.StatusBadRequest, msg: "want an object"},
		{name: "json trailing data", call: call{target: list, contentType: "application/json", body: `{} {}`}, status: http.StatusBadRequest, msg: "data after the object"},
		{name: "bad query escape", call: call{target: list + "?limit=%zz"}, status: http.StatusBadRequest, msg: "invalid query string"},
		{name: "unsupported type", call: call{target: list, contentType: "text/plain", body: "limit=5"}, status: http.StatusUnsupportedMediaType, msg: "unsupported Content-Type"},
		{name: "too large", call: call{method: http.MethodPost, target: "/api2/json/remotes/tasks/refresh", body: "remotes=" + strings.Repeat("a", MaxBodyBytes)}, status: http.StatusRequestEntityTooLarge, msg: "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.call.do(t, New(newFake(t), Options{})).wantStatus(t, c.status)
			if !strings.Contains(a.Msg, c.msg) {
				t.Errorf("message = %q, want ...%s...", a.Msg, c.msg)
			}
		})
	}
	// An empty JSON body is no parameters.
	call{target: list, contentType: "application/json", body: " \n"}.do(t, New(newFake(t), Options{})).wantStatus(t, http.StatusOK)
}
