package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBackupsCommand: "taskfleet backups" prints the API's rows in its
// order (failing and stale first) with the jobs and a summary, passes its
// filters as the API's parameters, and --json prints the data.
func TestBackupsCommand(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != pathBackups {
			http.NotFound(w, r)
			return
		}
		query = r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
			"guests": []map[string]any{
				{"remote": "east", "node": "pve1", "vmid": "101", "type": "lxc", "status": "error", "last_status": "got timeout", "last_start": 1000, "last_ok": 0},
				{"remote": "east", "node": "pve2", "vmid": "102", "type": "qemu", "status": "none"},
				{"remote": "east", "node": "pve1", "vmid": "100", "type": "qemu", "name": "web", "status": "ok", "last_status": "OK", "last_start": 3000, "last_ok": 3600, "storage": "pbs-1"},
			},
			"jobs":         []map[string]any{{"remote": "bak", "datastore": "store1", "type": "sync", "id": "off:r:store1::s-1", "status": "warning", "succeeded": false, "last_status": "WARNINGS: 3", "last_start": 2000}},
			"pending_logs": map[string]int{"east": 2},
			"now":          7200,
		}})
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"backups", "--url", srv.URL, "--status", "error,none", "--older-than", "26h", "--remote", "east"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if query != "older_than=26h&remote=east&status=error%2Cnone" {
		t.Errorf("query %q", query)
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 8 || !strings.HasPrefix(lines[0], "REMOTE") || !strings.Contains(lines[1], "101") || !strings.Contains(lines[2], "102") || !strings.Contains(lines[3], "100") {
		t.Errorf("table:\n%s", out.String())
	}
	for _, want := range []string{"got timeout", "1h00m ago", "never", "off:r:store1::s-1", "WARNINGS: 3", "3 guests, 1 failing, 1 never backed up; 2 backup job logs not read yet"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := dispatch(context.Background(), []string{"backups", "--url", srv.URL, "--json"}, &out, &errOut); code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, errOut.String())
	}
	var data struct {
		Guests []map[string]any `json:"guests"`
	}
	if err := json.Unmarshal(out.Bytes(), &data); err != nil || len(data.Guests) != 3 {
		t.Errorf("--json: %v\n%s", err, out.String())
	}

	errOut.Reset()
	if code := dispatch(context.Background(), []string{"backups", "--url", srv.URL, "--older-than", "a day"}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "--older-than") {
		t.Errorf("bad --older-than: exit %d: %s", code, errOut.String())
	}
}
