package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/backups"
	"github.com/taskfleet/taskfleet/task"
)

// backupFake is the fake backend with a backup overview.
type backupFake struct {
	*fakeBackend
	o *backups.Overview
}

func (b *backupFake) Backups(context.Context) (*backups.Overview, error) {
	if b.o == nil {
		return nil, ErrNotReady
	}
	return b.o, nil
}

func newBackupFake(t *testing.T) *backupFake {
	now := time.Now().Unix()
	vz := func(remote, node, id string, start int64, status string) task.Task {
		return task.Task{Remote: remote, UPID: task.UPID{Kind: task.PVE, Node: node, PID: 1, StartTime: start, Type: "vzdump", ID: id, User: "root@pam"}, EndTime: start + 60, Status: status}
	}
	east := backups.Build(backups.Input{Remote: "east", Kind: task.PVE,
		Tasks:  []task.Task{vz("east", "pve1", "100", now-3600, "OK"), vz("east", "pve1", "101", now-3600, "job errors"), vz("east", "pve1", "101", now-40*3600, "OK")},
		Guests: []backups.GuestInfo{{VMID: 100, Type: "qemu", Node: "pve1"}, {VMID: 101, Type: "lxc", Node: "pve1"}, {VMID: 102, Type: "qemu", Node: "pve2"}}})
	west := backups.Build(backups.Input{Remote: "west", Kind: task.PVE, Tasks: []task.Task{vz("west", "pve7", "200", now-7200, "OK")}})
	return &backupFake{fakeBackend: newFake(t), o: backups.New(time.Now(), east, west)}
}

func TestBackupsEndpoint(t *testing.T) {
	b := newBackupFake(t)
	h := New(b, Options{Tokens: tokens})
	type ans struct {
		Guests      []backups.Row  `json:"guests"`
		Jobs        []backups.Job  `json:"jobs"`
		PendingLogs map[string]int `json:"pending_logs"`
	}
	ids := func(a ans) string {
		var s []string
		for _, g := range a.Guests {
			s = append(s, g.Remote+"/"+g.VMID)
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name, query, token, want string
	}{
		{"all, failing and stale first", "", adminSecret, "east/101 east/102 west/200 east/100"},
		{"one remote", "?remote=east", adminSecret, "east/101 east/102 east/100"},
		{"status classes", "?status=error,none", adminSecret, "east/101 east/102"},
		{"older_than as a duration", "?older_than=90m", adminSecret, "east/101 east/102 west/200"},
		{"older_than in seconds", "?older_than=36000", adminSecret, "east/101 east/102"},
		{"a scoped token sees its remotes only", "", eastSecret, "east/101 east/102 east/100"},
	} {
		a := call{target: PathBackups + tc.query, token: tc.token}.do(t, h).wantStatus(t, http.StatusOK)
		var got ans
		a.decode(t, &got)
		if ids(got) != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, ids(got), tc.want)
		}
	}
	a := call{target: PathBackups + "?remote=east&status=error", token: adminSecret}.do(t, h)
	var got ans
	a.decode(t, &got)
	if len(got.Guests) != 1 || got.Guests[0].AgeSeconds < 39*3600 || got.Guests[0].LastStatus != "job errors" || got.Jobs == nil {
		t.Errorf("row of 101: %s", a.raw)
	}

	for _, tc := range []struct {
		query, param string
		status       int
	}{
		{"?status=stale", "status", 400},
		{"?older_than=yesterday", "older_than", 400},
		{"?older_than=-5h", "older_than", 400},
		{"?remote=bad%20id", "remote", 400},
		{"?colour=red", "colour", 400},
		{"?remote=nosuch", "", 404},
	} {
		a := call{target: PathBackups + tc.query, token: adminSecret}.do(t, h)
		if a.status != tc.status || tc.param != "" && a.Errors[tc.param] == "" {
			t.Errorf("%s: status %d, errors %v; want %d naming %q", tc.query, a.status, a.Errors, tc.status, tc.param)
		}
	}
	call{target: PathBackups + "?remote=west", token: eastSecret}.do(t, h).wantStatus(t, http.StatusForbidden)
	call{target: PathBackups}.do(t, h).wantStatus(t, http.StatusUnauthorized)

	b.o = nil
	call{target: PathBackups, token: adminSecret}.do(t, h).wantStatus(t, http.StatusServiceUnavailable)
	call{target: PathBackups, token: adminSecret}.do(t, New(newFake(t), Options{Tokens: tokens})).wantStatus(t, http.StatusNotImplemented)
}
