package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotifyTestSendsASample: notify test delivers the sample message to
// the target's webhook with its template and secret header; an unknown
// target and a failing receiver exit 1 without printing a secret.
func TestNotifyTestSendsASample(t *testing.T) {
	var got, auth string
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, auth = string(b), r.Header.Get("Authorization")
		if fail {
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	secretURL := srv.URL + "/hook/s3cr3t-path-0123456789"
	files := map[string]string{
		"hook.url":  secretURL + "\n",
		"hook.auth": "Bearer tk-0123456789abcdef\n",
		"taskfleet.toml": `[server]
cache_dir = "cache"

[[notify]]
name = "slack"
kind = "webhook"
url_file = "hook.url"
header_files = { Authorization = "hook.auth" }
body = '{"text": {{json .Text}}}'

[[notify.rule]]
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "taskfleet.toml")
	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), []string{"notify", "test", "--config", cfg, "--target", "slack"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(got, `{"text": "[test] taskfleet: 1 failed task (pve-east); 1 guest without a recent successful backup\n`) || auth != "Bearer tk-0123456789abcdef" {
		t.Fatalf("receiver got %q with %q", got, auth)
	}
	if out.String() != "ok: sample message delivered to slack (webhook)\n" {
		t.Fatalf("stdout %q", out.String())
	}
	fail = true
	out.Reset()
	errOut.Reset()
	if code := dispatch(context.Background(), []string{"notify", "test", "--config", cfg, "--target", "slack"}, &out, &errOut); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if want := "taskfleet notify test: target slack: deliver webhook: the receiver answered 500 Internal Server Error\n"; errOut.String() != want {
		t.Fatalf("stderr %q, want %q", errOut.String(), want)
	}
	errOut.Reset()
	if code := dispatch(context.Background(), []string{"notify", "test", "--config", cfg, "--target", "mail"}, &out, &errOut); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errOut.String(), `has no [[notify]] target "mail" (configured: slack)`) {
		t.Fatalf("stderr %q", errOut.String())
	}
}
