package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/config"
)

// TestCheckConfigCAFileWithoutCertificates: a ca_file that holds no
// certificate is reported at remote[i].ca_file, by the validation and by
// --connect (the file changed after it was loaded), never as a
// misleading certificate error of the endpoints.
func TestCheckConfigCAFileWithoutCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "taskfleet.toml")
	if err := os.WriteFile(path, []byte(`[server]
cache_dir = "cache"

[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "d63e505a-e3ec-449a-9bc7-1da610d4ccde"
ca_file = "ca.pem"
endpoints = [ { url = "https://192.0.2.10" } ]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), []string{"check-config", "--connect", path}, &stdout, &stderr)
	want := path + `:9: remote "pve-east": ca_file: `
	if code != exitFailure || !strings.HasPrefix(stdout.String(), want) || !strings.Contains(stdout.String(), "holds no PEM certificate") {
		t.Errorf("check-config: exit %d, stdout %q; want 1 and a problem starting %q", code, stdout.String(), want)
	}

	// Valid when loaded, emptied before --connect reads it again.
	r := config.Remote{ID: "pve-east", CAFile: ca, Endpoints: []config.Endpoint{{URL: "https://192.0.2.10:8006"}}}
	var out bytes.Buffer
	if checkRemote(context.Background(), &out, path, 0, r, time.Second) {
		t.Fatal("checkRemote accepted a CA file without certificates")
	}
	if !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "CA file "+ca+" holds no PEM certificate") {
		t.Errorf("checkRemote printed %q, want a problem starting %q", out.String(), want)
	}
}
