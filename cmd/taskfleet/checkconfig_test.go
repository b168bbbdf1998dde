package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// brokenConfig has one problem (at least) in nearly every section; the
// inline secret must never be printed.
const brokenConfig = `[server]
listen = "127.0.0.1:99999"
cache_dir = ""

[polling]
tick = "0s"
retention_days = 0

[[remote]]
id = "pve east"
type = "pve"
token_id = "taskfleet@pve"
token_secret = "s3cr3t-value-never-shown"
tokensecret = "x"
endpoints = [
  { url = "http://192.0.2.10:8006", fingerprint = "AB:CD" },
]

[[remote]]
id = "pbs1"
type = "pbs"
token_id = "taskfleet@pbs!poll"
token_secret_file = "missing.secret"
endpoints = [ { url = "https://a.example:8007" }, { url = "https://b.example:8007" } ]

[[remote]]
id = "pbs1"
type = "xyz"
token_id = "taskfleet@pbs!poll"
token_secret = "another-secret-value"
endpoints = [ { url = "https://c.example" } ]

[[api_token]]
id = "ui"
secret_file = "ui.secret"
remotes = ["nope"]
`

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(brokenConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ui.secret"), []byte("a-long-enough-ui-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), []string{"check-config", bad}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	out := stdout.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// Each problem: the file, the line, the remote (when its id is usable)
	// and the field, in the order of the lines.
	want := []string{
		bad + `:2: server.listen: want a port number from 1 to 65535`,
		bad + `:3: server.cache_dir: must not be empty`,
		bad + `:6: polling.tick: want at least 1s`,
		bad + `:7: polling.retention_days: want 1 to 3650`,
		bad + `:10: remote[0].id: want letters, digits`,
		bad + `:12: remote[0].token_id: want an API token id`,
		bad + `:14: remote[0].tokensecret: unknown key`,
		bad + `:16: remote[0].endpoints[0].url: want an "https://" URL`,
		bad + `:16: remote[0].endpoints[0].fingerprint: got `,
		bad + `:23: remote "pbs1": token_secret_file: read secret: open ` + filepath.Join(dir, "missing.secret"),
		bad + `:24: remote "pbs1": endpoints: a pbs remote is one server`,
		bad + `:27: remote "pbs1": id: duplicate id: remote[1] (line 20) has it too`,
		bad + `:28: remote "pbs1": type: want "pve" or "pbs"`,
		bad + `:36: api_token[0].remotes[0]: no remote has this id`,
	}
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(lines), len(want), out)
	}
	for i := range min(len(lines), len(want)) {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i, lines[i], want[i])
		}
	}
	for _, secret := range []string{"s3cr3t-value-never-shown", "another-secret-value", "a-long-enough-ui-secret"} {
		if strings.Contains(out+stderr.String(), secret) {
			t.Errorf("output shows a secret:\n%s", out)
		}
	}

	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(`
[server]
cache_dir = "cache"

[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "d63e505a-e3ec-449a-9bc7-1da610d4ccde"
endpoints = [ { url = "https://192.0.2.10" }, { url = "https://192.0.2.11" } ]

[[remote]]
id = "pbs-1"
type = "pbs"
token_id = "taskfleet@pbs!poll"
token_secret = "0b4f6bd4-3d0e-4a6c-9d55-1b0c1c7e2a11"
endpoints = [ { url = "https://192.0.2.20" } ]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := dispatch(context.Background(), []string{"check-config", good}, &stdout, &stderr); code != 0 || stdout.String() != "ok: 2 remotes\n" {
		t.Errorf("good config: exit %d, output %q; want 0 and \"ok: 2 remotes\"", code, stdout.String())
	}

	stderr.Reset()
	if code := dispatch(context.Background(), []string{"check-config", filepath.Join(dir, "absent.toml")}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no such file") {
		t.Errorf("absent file: exit %d, stderr %q; want 1 and the error", code, stderr.String())
	}
	if code := dispatch(context.Background(), []string{"check-config"}, &stdout, &stderr); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
}
