package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const editBase = `# taskfleet configuration
[server]
listen = "127.0.0.1:8087"   # loopback only
cache_dir = "/tmp/cache"

# The east cluster.
# Two nodes.
[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "0123456789abcdef0123"
endpoints = [
  { url = "https://192.0.2.10:8006" }, # node 1
]

# The backup server.
[[remote]]
id = "pbs-1"
type = "pbs"
token_id = "taskfleet@pbs!poll"
token_secret = "0123456789abcdef0124"
endpoints = [ { url = "https://192.0.2.20:8007" } ]

[polling]
tick = "10s"
`

func TestRemoteBlocks(t *testing.T) {
	blocks, err := RemoteBlocks([]byte(editBase))
	if err != nil {
		t.Fatal(err)
	}
	want := []RemoteBlock{{ID: "pve-east", Index: 0, Start: 6, End: 15}, {ID: "pbs-1", Index: 1, Start: 17, End: 23}}
	if len(blocks) != 2 || blocks[0] != want[0] || blocks[1] != want[1] {
		t.Fatalf("blocks %+v, want %+v", blocks, want)
	}
}

func TestRemoveRemote(t *testing.T) {
	out, _, err := RemoveRemote([]byte(editBase), "pve-east")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(editBase, `# The east cluster.
# Two nodes.
[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "0123456789abcdef0123"
endpoints = [
  { url = "https://192.0.2.10:8006" }, # node 1
]

`, "", 1)
	if string(out) != want {
		t.Errorf("after removing pve-east:\n%s\nwant:\n%s", out, want)
	}
	cfg, err := Parse(out, "t.toml", "")
	if err != nil || len(cfg.Remotes) != 1 || cfg.Remotes[0].ID != "pbs-1" || cfg.Polling.Tick.String() != "10s" {
		t.Errorf("result: %v, %+v", err, cfg)
	}
	out, _, err = RemoveRemote([]byte(editBase), "pbs-1")
	if err != nil || strings.Contains(string(out), "pbs-1") || strings.Contains(string(out), "backup server") || !strings.Contains(string(out), "]\n\n[polling]") {
		t.Errorf("after removing pbs-1 (%v):\n%s", err, out)
	}
	if _, _, err := RemoveRemote([]byte(editBase), "nope"); err == nil || !strings.Contains(err.Error(), `no [[remote]] has id "nope"`) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestAppendRemoteKeepsComments(t *testing.T) {
	block := "[[remote]]\nid = \"pve-west\"\ntype = \"pve\"\ntoken_id = \"taskfleet@pve!poll\"\ntoken_secret = \"0123456789abcdef0125\"\nendpoints = [ { url = " + Quote("https://192.0.2.30") + " } ]\n"
	out := AppendRemote([]byte(editBase), block)
	if !strings.HasPrefix(string(out), editBase) || !strings.HasSuffix(string(out), "\n\n"+block) {
		t.Errorf("appended:\n%s", out)
	}
	cfg, err := Parse(out, "t.toml", "")
	if err != nil || len(cfg.Remotes) != 3 || cfg.Remotes[2].Endpoints[0].URL != "https://192.0.2.30:8006" {
		t.Fatalf("result: %v", err)
	}
	path := filepath.Join(t.TempDir(), "taskfleet.toml")
	if err := WriteFile(path, out, 0o640); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(out) {
		t.Error("WriteFile wrote something else")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	os.Chmod(path, 0o600)
	if err := WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after a rewrite, want the file's 0600", fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestWhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taskfleet.toml")
	os.WriteFile(path, []byte(editBase), 0o600)
	for key, want := range map[string]string{
		"server.cache_dir":              path + `:4: server.cache_dir: x`,
		"server.listen":                 path + `:3: server.listen: x`,
		"polling.request_timeout":       path + `:25: polling.request_timeout (default): x`,
		"remote[1].endpoints[0].url":    path + `:23: remote "pbs-1": endpoints[0].url: x`,
		"remote[0].endpoints[0]":        path + `:14: remote "pve-east": endpoints[0]: x`,
		"remote[0].endpoints[0].finger": path + `:14: remote "pve-east": endpoints[0].finger: x`,
	} {
		p := Where(path, key)
		p.Message = "x"
		if p.String() != want {
			t.Errorf("Where(%s) = %s, want %s", key, p, want)
		}
	}
}

// TestRemoveRemoteWithEndpointTables removes a remote whose endpoints are
// [[remote.endpoints]] tables: they go with it, and the remote above keeps
// only its own.
func TestRemoveRemoteWithEndpointTables(t *testing.T) {
	const in = `[server]
listen = "127.0.0.1:8087"

[[remote]]
id = "a"
type = "pbs"
token_id = "taskfleet@pbs!poll"
token_secret = "0123456789abcdef0123"
endpoints = [ { url = "https://192.0.2.20:8007" } ]

[[remote]]
id = "b"
type = "pbs"
token_id = "taskfleet@pbs!poll"
token_secret = "0123456789abcdef0123"

[[remote.endpoints]]
url = "https://192.0.2.21:8007"

[polling]
tick = "10s"
`
	out, _, err := RemoveRemote([]byte(in), "b")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "192.0.2.21") || !strings.Contains(string(out), "[polling]") {
		t.Errorf("after removing b:\n%s", out)
	}
	cfg, err := Parse(out, "t.toml", "")
	if err != nil || len(cfg.Remotes) != 1 || len(cfg.Remotes[0].Endpoints) != 1 {
		t.Errorf("result: %v, %+v", err, cfg)
	}
}
