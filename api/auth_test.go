package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

const (
	adminSecret = "admin-secret-0123456789"
	eastSecret  = "east-secret-0123456789"
	noneSecret  = "none-secret-0123456789"
)

// tokens: an admin token, one scoped to east, one scoped to nothing.
var tokens = []Token{
	{ID: "admin", Secret: adminSecret},
	{ID: "east-team", Secret: eastSecret, Remotes: []string{"east"}},
	{ID: "nobody", Secret: noneSecret, Remotes: []string{}},
}

func metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "taskfleet_tasks_cached 6")
	})
}

func TestAuthentication(t *testing.T) {
	h := New(newFake(t), Options{Tokens: tokens, Metrics: metricsHandler()})
	list := "/api2/json/remotes/tasks/list"
	for _, c := range []struct {
		name   string
		header string
		status int
	}{
		{name: "no header", status: http.StatusUnauthorized},
		{name: "wrong secret", header: "Bearer wrong", status: http.StatusUnauthorized},
		{name: "secret prefix", header: "Bearer " + adminSecret[:10], status: http.StatusUnauthorized},
		{name: "secret with suffix", header: "Bearer " + adminSecret + "x", status: http.StatusUnauthorized},
		{name: "basic scheme", header: "Basic " + adminSecret, status: http.StatusUnauthorized},
		{name: "PVE token scheme", header: "PVEAPIToken=admin=" + adminSecret, status: http.StatusUnauthorized},
		{name: "empty bearer", header: "Bearer ", status: http.StatusUnauthorized},
		{name: "admin", header: "Bearer " + adminSecret, status: http.StatusOK},
		{name: "scheme is case-insensitive", header: "bearer " + adminSecret, status: http.StatusOK},
		{name: "scoped token", header: "Bearer " + eastSecret, status: http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, list, nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.status == http.StatusUnauthorized {
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				var e struct {
					Data    any    `json:"data"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" || e.Data != nil {
					t.Errorf("401 body %s: want data null and a message", rec.Body)
				}
			}
		})
	}
	// Without a token even unknown paths answer 401: nothing is revealed.
	get(t, h, "/api2/json/nope").wantStatus(t, http.StatusUnauthorized)
	// Probes need no token.
	for _, p := range []string{"/livez", "/healthz", "/readyz"} {
		get(t, h, p).wantStatus(t, http.StatusOK)
	}
	// /metrics needs a token for all remotes.
	get(t, h, "/metrics").wantStatus(t, http.StatusUnauthorized)
	call{target: "/metrics", token: eastSecret}.do(t, h).wantStatus(t, http.StatusForbidden)
	a := call{target: "/metrics", token: adminSecret}.do(t, h).wantStatus(t, http.StatusOK)
	if a.raw != "taskfleet_tasks_cached 6\n" {
		t.Errorf("/metrics body = %q", a.raw)
	}
}

func TestNoTokensAllowsAll(t *testing.T) {
	b := newFake(t)
	h := New(b, Options{Metrics: metricsHandler()})
	get(t, h, "/api2/json/remotes/tasks/list").wantStatus(t, http.StatusOK)
	if f := b.lastFilter(t); f.Scope != nil {
		t.Errorf("scope = %v without tokens, want nil", f.Scope)
	}
	get(t, h, "/metrics").wantStatus(t, http.StatusOK)
	call{method: http.MethodPost, target: "/api2/json/reload"}.do(t, h).wantStatus(t, http.StatusOK)
	// A token sent anyway is ignored.
	call{target: "/api2/json/remotes/status", token: "whatever"}.do(t, h).wantStatus(t, http.StatusOK)
}

func TestMetricsNotConfigured(t *testing.T) {
	get(t, New(newFake(t), Options{}), "/metrics").wantStatus(t, http.StatusNotFound)
}

// TestScopedToken checks that a token limited to "east" never sees
// another remote's tasks, statistics or status, and gets 403 for them.
func TestScopedToken(t *testing.T) {
	b := newFake(t)
	h := New(b, Options{Tokens: tokens})
	east := func(method, target string) answer {
		return call{method: method, target: target, token: eastSecret}.do(t, h)
	}

	a := east(http.MethodGet, "/api2/json/remotes/tasks/list?limit=0").wantStatus(t, http.StatusOK)
	if got := a.remotesOf(t); !slices.Equal(got, []string{"east", "east", "east"}) || *a.Total != 3 {
		t.Errorf("list: remotes %v total %d, want only east's 3", got, *a.Total)
	}
	if f := b.lastFilter(t); !reflect.DeepEqual(f.Scope, map[string]bool{"east": true}) {
		t.Errorf("backend scope = %v, want {east}", f.Scope)
	}

	a = east(http.MethodGet, "/api2/json/remotes/tasks/statistics").wantStatus(t, http.StatusOK)
	var st task.Statistics
	a.decode(t, &st)
	if _, ok := st.ByRemote["west"]; ok || len(st.ByRemote) != 1 {
		t.Errorf("statistics by-remote = %v, want only east", st.ByRemote)
	}
	if f := b.lastFilter(t); !reflect.DeepEqual(f.Scope, map[string]bool{"east": true}) {
		t.Errorf("statistics scope = %v, want {east}", f.Scope)
	}

	var status []RemoteStatus
	east(http.MethodGet, "/api2/json/remotes/status").wantStatus(t, http.StatusOK).decode(t, &status)
	if len(status) != 1 || status[0].Remote != "east" {
		t.Errorf("status = %+v, want only east", status)
	}

	before := b.calls()
	for _, target := range []string{
		"/api2/json/remotes/tasks/list?remote=west",
		"/api2/json/remotes/tasks/statistics?remote=west",
		"/api2/json/remotes/tasks/list?remote=not-configured", // 403, not 404: no hint what exists
	} {
		a := east(http.MethodGet, target).wantStatus(t, http.StatusForbidden)
		if !strings.Contains(a.Msg, "permission check failed") {
			t.Errorf("%s: message %q", target, a.Msg)
		}
	}
	if b.calls() != before {
		t.Error("the backend was queried for a forbidden remote")
	}
	east(http.MethodPost, "/api2/json/remotes/tasks/refresh?remotes=east,west").wantStatus(t, http.StatusForbidden)
	east(http.MethodPost, "/api2/json/remotes/tasks/track?upid=pve:west!UPID:pve7:00002000:00B00000:66000300:qmstart:200:alice@pve!tok:").
		wantStatus(t, http.StatusForbidden)
	east(http.MethodPost, "/api2/json/reload").wantStatus(t, http.StatusForbidden)
	if len(b.refreshes) != 0 || len(b.tracked) != 0 || b.reloads != 0 {
		t.Errorf("forbidden actions reached the backend: refresh %v track %v reloads %d", b.refreshes, b.tracked, b.reloads)
	}

	// Refresh without remotes refreshes the token's remotes, not all.
	east(http.MethodPost, "/api2/json/remotes/tasks/refresh").wantStatus(t, http.StatusOK)
	if len(b.refreshes) != 1 || !slices.Equal(b.refreshes[0], []string{"east"}) {
		t.Errorf("refresh remotes = %v, want [[east]]", b.refreshes)
	}
	east(http.MethodPost, "/api2/json/remotes/tasks/track?upid=pve:east!UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:").
		wantStatus(t, http.StatusOK)
}

// TestTokenScopedToNothing: an empty scope sees nothing and refreshes
// nothing (never "all").
func TestTokenScopedToNothing(t *testing.T) {
	b := newFake(t)
	h := New(b, Options{Tokens: tokens})
	a := call{target: "/api2/json/remotes/tasks/list", token: noneSecret}.do(t, h).wantStatus(t, http.StatusOK)
	if string(a.Data) != "[]" || *a.Total != 0 {
		t.Errorf("list = %s total %d, want nothing", a.Data, *a.Total)
	}
	if f := b.lastFilter(t); f.Scope == nil || len(f.Scope) != 0 {
		t.Errorf("scope = %#v, want an empty, non-nil set", f.Scope)
	}
	a = call{method: http.MethodPost, target: "/api2/json/remotes/tasks/refresh", token: noneSecret}.do(t, h).wantStatus(t, http.StatusOK)
	if string(a.Data) != "[]" || len(b.refreshes) != 0 {
		t.Errorf("refresh = %s, backend refreshes %v; want nothing", a.Data, b.refreshes)
	}
}

// TestScopeDefenseInDepth: a backend that ignores the scope still leaks
// nothing through list or statistics by-remote.
func TestScopeDefenseInDepth(t *testing.T) {
	b := newFake(t)
	b.leak = true
	h := New(b, Options{Tokens: tokens})
	a := call{target: "/api2/json/remotes/tasks/list", token: eastSecret}.do(t, h).wantStatus(t, http.StatusOK)
	for _, r := range a.remotesOf(t) {
		if r != "east" {
			t.Errorf("list leaked a task of %s", r)
		}
	}
	var st task.Statistics
	call{target: "/api2/json/remotes/tasks/statistics", token: eastSecret}.do(t, h).wantStatus(t, http.StatusOK).decode(t, &st)
	for r := range st.ByRemote {
		if r != "east" {
			t.Errorf("statistics leaked remote %s", r)
		}
	}
}

func TestTokenPrintsNoSecret(t *testing.T) {
	tok := Token{ID: "ui", Secret: adminSecret, Remotes: []string{"east"}}
	j, _ := json.Marshal(tok)
	opts := Options{Tokens: []Token{tok}}
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), fmt.Sprintf("%s", tok),
		fmt.Sprintf("%+v", opts), fmt.Sprintf("%v", []Token{tok}), string(j),
	} {
		if strings.Contains(s, adminSecret) {
			t.Errorf("token printed its secret: %s", s)
		}
		if !strings.Contains(s, "ui") {
			t.Errorf("token printed without its id: %s", s)
		}
	}
}
