package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

func TestLoadFull(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"taskfleet.toml":          string(src),
		"secrets/pve-east.secret": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n",
		"secrets/ui.secret":       "ui-secret-0123456789\r\n",
		"ca.pem":                  selfSignedPEM(t),
	})
	cfg, err := Load(filepath.Join(dir, "taskfleet.toml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Server: Server{Listen: "0.0.0.0:8087", CacheDir: filepath.Join(dir, "cache"), TLS: TLSAuto},
		Polling: Polling{
			Tick: 5 * time.Second, RefreshInterval: 15 * time.Minute,
			MaxConnections: 30, MaxConnectionsPerRemote: 4,
			RequestTimeout: 20 * time.Second, RetentionDays: 14,
		},
		Metrics: defaultMetrics(),
		Remotes: []Remote{
			{
				ID: "pve-east", Type: task.PVE, TokenID: "taskfleet@pve!poll",
				TokenSecret:     "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
				TokenSecretFile: filepath.Join(dir, "secrets/pve-east.secret"),
				MaxConnections:  4,
				Endpoints: []Endpoint{
					{URL: "https://192.0.2.10:8006", Fingerprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"},
					{URL: "https://192.0.2.11:8006"},
				},
			},
			{
				ID: "pbs-1", Type: task.PBS, TokenID: "taskfleet@pbs!poll",
				TokenSecret:    "d63e505a-e3ec-449a-9bc7-1da610d4ccde",
				CAFile:         filepath.Join(dir, "ca.pem"),
				MaxConnections: 2,
				Endpoints:      []Endpoint{{URL: "https://backup.example.org:8007"}},
			},
		},
		APITokens: []APIToken{
			{ID: "ui", Secret: "ui-secret-0123456789", SecretFile: filepath.Join(dir, "secrets/ui.secret"), Remotes: []string{"*"}},
			{ID: "east-team", Secret: "0123456789abcdef0123", Remotes: []string{"pve-east"}},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load =\n%#v\nwant\n%#v", *cfg, *want)
		for i := range min(len(cfg.Remotes), len(want.Remotes)) {
			if !reflect.DeepEqual(cfg.Remotes[i], want.Remotes[i]) {
				t.Errorf("remote %d: got %+v want %+v (secret equal: %v)", i, cfg.Remotes[i], want.Remotes[i], cfg.Remotes[i].TokenSecret == want.Remotes[i].TokenSecret)
			}
		}
	}
	if cfg.RequireLoopback() {
		t.Error("RequireLoopback() = true with api tokens configured")
	}
	if !cfg.APITokens[0].AllRemotes() || cfg.APITokens[1].AllRemotes() {
		t.Error("AllRemotes() wrong for [*] or [pve-east]")
	}
	if r, ok := cfg.Remote("pbs-1"); !ok || r.Type != task.PBS {
		t.Errorf("Remote(pbs-1) = %+v, %v", r, ok)
	}
	if _, ok := cfg.Remote("nope"); ok {
		t.Error("Remote(nope) found a remote")
	}
}

func TestEmptyConfigIsDefault(t *testing.T) {
	cfg, err := Parse(nil, "empty.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Remotes, want.APITokens = []Remote{}, []APIToken{}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("Parse(empty) = %+v, want %+v", *cfg, want)
	}
	if !cfg.RequireLoopback() {
		t.Error("RequireLoopback() = false without api tokens")
	}
}

func TestDefaultMaxConnectionsByType(t *testing.T) {
	src := `
[polling]
max_connections_per_remote = 7
[[remote]]
id = "pve"
type = "pve"
token_id = "a@pve!b1"
token_secret = "s1"
endpoints = [{ url = "https://a" }]
[[remote]]
id = "pbs"
type = "pbs"
token_id = "a@pbs!b1"
token_secret = "s2"
endpoints = [{ url = "https://b" }]
`
	cfg, err := Parse([]byte(src), "t.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Remotes[0].MaxConnections; got != 7 {
		t.Errorf("pve max_connections = %d, want polling.max_connections_per_remote 7", got)
	}
	if got := cfg.Remotes[1].MaxConnections; got != 1 {
		t.Errorf("pbs max_connections = %d, want 1", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

// TestDocsExample parses the complete example of docs/configuration.md:
// its only problems must be the files it names that do not exist here.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```toml\n")
	if !ok {
		t.Fatal("no ```toml block in docs/configuration.md")
	}
	block, _, _ = strings.Cut(block, "```")
	problems := problemsOf(t, block, nil)
	for _, p := range problems {
		if !strings.Contains(p, "no such file or directory") {
			t.Errorf("docs example: %s", p)
		}
	}
	// pve-east.secret, pve-west.secret, internal-ca.pem and ops.secret
	if len(problems) != 4 {
		t.Errorf("docs example: %d problems, want the 4 missing files:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}
