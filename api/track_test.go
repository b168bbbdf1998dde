package api

import (
	"net/http"
	"slices"
	"testing"
)

// TestUntrack stops tracking with DELETE on the track path: 200 with
// {"data":null}, 404 when the task is not tracked (or the remote not
// configured), 400 for bad parameters, 403 outside a token's scope.
func TestUntrack(t *testing.T) {
	const (
		track  = "/api2/json/remotes/tasks/track"
		native = "UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:"
		qual   = "pve:east!" + native
	)
	b := newFake(t)
	h := New(b, Options{})
	call{method: http.MethodPost, target: track + "?remote=east&upid=" + native}.do(t, h).wantStatus(t, http.StatusOK)

	a := call{method: http.MethodDelete, target: track + "?remote=east&upid=" + native}.do(t, h).wantStatus(t, http.StatusOK)
	if string(a.Data) != "null" || len(b.tracked) != 0 {
		t.Errorf("untrack: data %s, still tracked %v", a.Data, b.tracked)
	}
	a = call{method: http.MethodDelete, target: track, body: "upid=" + qual}.do(t, h).wantStatus(t, http.StatusNotFound)
	if want := "task '" + qual + "' is not tracked"; a.Msg != want {
		t.Errorf("untrack again: message %q, want %q", a.Msg, want)
	}
	call{method: http.MethodDelete, target: track + "?remote=nope&upid=" + native}.do(t, h).wantStatus(t, http.StatusNotFound)
	a = call{method: http.MethodDelete, target: track + "?remote=east&upid=UPID:bogus"}.do(t, h).wantStatus(t, http.StatusBadRequest)
	if a.Errors["upid"] == "" {
		t.Errorf("bad upid: errors %v", a.Errors)
	}
	a = call{method: http.MethodDelete, target: track + "?upid=" + native}.do(t, h).wantStatus(t, http.StatusBadRequest)
	if a.Errors["remote"] == "" {
		t.Errorf("no remote: errors %v", a.Errors)
	}

	a = call{method: http.MethodGet, target: track}.do(t, h).wantStatus(t, http.StatusMethodNotAllowed)
	if allow := a.header.Get("Allow"); allow != "POST, DELETE" {
		t.Errorf("Allow = %q, want POST, DELETE", allow)
	}

	scoped := New(b, Options{Tokens: tokens})
	call{method: http.MethodPost, target: track + "?remote=bak&upid=" + native, token: adminSecret}.do(t, scoped)
	call{method: http.MethodDelete, target: track + "?remote=bak&upid=" + native, token: eastSecret}.do(t, scoped).wantStatus(t, http.StatusForbidden)
	if !slices.Equal(b.tracked, []string{"pve:bak!" + native}) {
		t.Errorf("tracked after a forbidden untrack: %v", b.tracked)
	}
}
