package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// logsFake is the fake backend with task logs.
type logsFake struct {
	*fakeBackend
	err  error
	args []any // remote, upid, start, limit of the last call
}

func (b *logsFake) TaskLog(_ context.Context, remote string, upid task.UPID, start, limit int) (TaskLog, error) {
	b.args = []any{remote, upid.String(), start, limit}
	if b.err != nil {
		return TaskLog{}, b.err
	}
	return TaskLog{Lines: []LogLine{{N: start + 1, T: "INFO: Starting Backup of VM 100 (qemu)"}}, Total: 27, Source: "cache"}, nil
}

const logUPID = "UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:"

func TestTaskLogEndpoint(t *testing.T) {
	b := &logsFake{fakeBackend: newFake(t)}
	h := New(b, Options{Tokens: []Token{{ID: "ops", Secret: "ops"}, {ID: "team", Secret: "team", Remotes: []string{"west"}}}})
	target := pathLog + "?start=4&limit=1&upid=" + url.QueryEscape("pve:east!"+logUPID)
	a := call{target: target, token: "ops"}.do(t, h).wantStatus(t, http.StatusOK)
	var body struct {
		Data   []LogLine `json:"data"`
		Total  int       `json:"total"`
		Source string    `json:"source"`
		Active bool      `json:"active"`
	}
	if err := json.Unmarshal([]byte(a.raw), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Data) != 1 || body.Data[0].N != 5 || body.Total != 27 || body.Source != "cache" || body.Active {
		t.Errorf("answer %s", a.raw)
	}
	if got := b.args; got[0] != "east" || got[1] != logUPID || got[2] != 4 || got[3] != 1 {
		t.Errorf("backend asked %v", got)
	}
	call{target: pathLog + "?remote=east&upid=" + url.QueryEscape(logUPID), token: "ops"}.do(t, h).wantStatus(t, http.StatusOK)
	if b.args[3] != defaultLogLimit {
		t.Errorf("default limit %v, want %d", b.args[3], defaultLogLimit)
	}

	for _, c := range []struct {
		target, token string
		err           error
		status        int
		want          string
	}{
		{pathLog + "?remote=east", "ops", nil, http.StatusBadRequest, "upid"},
		{pathLog + "?upid=" + url.QueryEscape(logUPID), "ops", nil, http.StatusBadRequest, "remote"},
		{pathLog + "?remote=west&upid=" + url.QueryEscape("pve:east!"+logUPID), "ops", nil, http.StatusBadRequest, "is not the remote parameter"},
		{pathLog + "?remote=east&start=-1&upid=" + url.QueryEscape(logUPID), "ops", nil, http.StatusBadRequest, "start"},
		{pathLog + "?remote=east&upid=" + url.QueryEscape(logUPID), "team", nil, http.StatusForbidden, "may not access remote"},
		{pathLog + "?remote=nope&upid=" + url.QueryEscape(logUPID), "ops", nil, http.StatusNotFound, "no such remote"},
		{pathLog + "?remote=east&upid=" + url.QueryEscape(logUPID), "ops", ErrNoSuchTask, http.StatusNotFound, "no log of task"},
		{pathLog + "?remote=east&upid=" + url.QueryEscape(logUPID), "ops", ErrNotReady, http.StatusServiceUnavailable, "not ready"},
		{pathLog + "?remote=east&upid=" + url.QueryEscape(logUPID), "ops", errors.New("remote 'east' node 'pve1': connection refused"), http.StatusBadGateway, "connection refused"},
	} {
		b.err = c.err
		a := call{target: c.target, token: c.token}.do(t, h)
		if a.status != c.status || !strings.Contains(a.raw, c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.target, a.status, a.raw, c.status, c.want)
		}
	}
	get(t, New(newFake(t), Options{}), pathLog+"?remote=east&upid="+url.QueryEscape(logUPID)).wantStatus(t, http.StatusNotImplemented)
}
