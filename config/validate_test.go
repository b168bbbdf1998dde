package config

import (
	"slices"
	"strings"
	"testing"
)

// base is a valid configuration that the cases below break; its line
// numbers are part of the expected output.
const base = `[server]
listen = "127.0.0.1:8087"

[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "11111111-2222-3333-4444-555555555555"
endpoints = [
  { url = "https://192.0.2.10:8006", fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89" },
  { url = "https://192.0.2.11:8006" },
]
`

func TestBaseIsValid(t *testing.T) {
	if p := problemsOf(t, base, nil); p != nil {
		t.Fatalf("base config has problems: %q", p)
	}
}

func TestProblems(t *testing.T) {
	cases := []struct {
		name  string
		src   string            // replaces base when it does not start with "+"; "+" appends to base
		edit  [2]string         // old, new: a replacement in base
		files map[string]string // files next to the config
		want  []string
	}{
		{
			name: "bad fingerprint",
			edit: [2]string{`{ url = "https://192.0.2.11:8006" }`, `{ url = "https://192.0.2.11:8006", fingerprint = "AB:CD" }`},
			want: []string{`taskfleet.toml:11: remote "pve-east": endpoints[1].fingerprint: got "AB:CD", 2 bytes: want 32 hex bytes, the certificate's SHA-256 fingerprint ("AB:CD:…", with or without colons, or openssl's "sha256 Fingerprint=AB:…")`},
		},
		{
			name: "http url and duplicate endpoint",
			edit: [2]string{`"https://192.0.2.11:8006"`, `"http://192.0.2.11:8006"`},
			want: []string{`taskfleet.toml:11: remote "pve-east": endpoints[1].url: want an "https://" URL`},
		},
		{
			name: "same endpoint twice, once with default port",
			edit: [2]string{`"https://192.0.2.11:8006"`, `"https://192.0.2.10"`},
			want: []string{`taskfleet.toml:11: remote "pve-east": endpoints[1].url: same address as endpoints[0]`},
		},
		{
			name: "url with path, credentials, no host",
			edit: [2]string{`{ url = "https://192.0.2.11:8006" },`, `{ url = "https://192.0.2.11:8006/api2" }, { url = "https://root:pw@h" }, { url = "https://:8006" }, { url = "https://h:99999" }, {},`},
			want: []string{
				`taskfleet.toml:11: remote "pve-east": endpoints[1].url: want only scheme, host and port, without path, query or fragment`,
				`taskfleet.toml:11: remote "pve-east": endpoints[2].url: must not contain credentials: use token_id and token_secret`,
				`taskfleet.toml:11: remote "pve-east": endpoints[3].url: missing host`,
				`taskfleet.toml:11: remote "pve-east": endpoints[4].url: want a port number from 1 to 65535`,
				`taskfleet.toml:11: remote "pve-east": endpoints[5].url: missing`,
			},
		},
		{
			name: "no endpoints",
			edit: [2]string{"endpoints = [\n  { url = \"https://192.0.2.10:8006\", fingerprint = \"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\" },\n  { url = \"https://192.0.2.11:8006\" },\n]\n", ""},
			want: []string{`taskfleet.toml:4: remote "pve-east": endpoints: want at least one endpoint`},
		},
		{
			name: "pbs with two endpoints",
			edit: [2]string{`type = "pve"`, `type = "pbs"`},
			want: []string{`taskfleet.toml:9: remote "pve-east": endpoints: a pbs remote is one server: want exactly one endpoint`},
		},
		{
			name: "bad type, token id, id",
			edit: [2]string{"id = \"pve-east\"\ntype = \"pve\"\ntoken_id = \"taskfleet@pve!poll\"", "id = \"-east\"\ntype = \"PVE\"\ntoken_id = \"taskfleet@pve\""},
			want: []string{
				`taskfleet.toml:5: remote[0].id: want letters, digits and '_', then also '.' and '-' (at most 128 characters)`,
				`taskfleet.toml:6: remote[0].type: want "pve" or "pbs"`,
				`taskfleet.toml:7: remote[0].token_id: want an API token id user@realm!tokenname`,
			},
		},
		{
			name: "missing keys of a remote",
			src:  "[[remote]]\nendpoints = [{ url = \"https://a\" }]\n",
			want: []string{
				`taskfleet.toml:1: remote[0].token_secret: missing: set token_secret or token_secret_file`,
				`taskfleet.toml:1: remote[0].id: missing`,
				`taskfleet.toml:1: remote[0].type: missing: want "pve" or "pbs"`,
				`taskfleet.toml:1: remote[0].token_id: missing`,
			},
		},
		{
			name:  "both secret and secret file",
			edit:  [2]string{`token_secret = "11111111-2222-3333-4444-555555555555"`, "token_secret = \"11111111-2222-3333-4444-555555555555\"\ntoken_secret_file = \"s\""},
			files: map[string]string{"s": "x-secret\n"},
			want:  []string{`taskfleet.toml:8: remote "pve-east": token_secret: set either token_secret or token_secret_file, not both`},
		},
		{
			name: "duplicate remote id",
			src:  base + "\n[[remote]]\nid = \"pve-east\"\ntype = \"pbs\"\ntoken_id = \"a@pbs!tok\"\ntoken_secret = \"x-secret\"\nendpoints = [{ url = \"https://b\" }]\n",
			want: []string{`taskfleet.toml:15: remote "pve-east": id: duplicate id: remote[0] (line 5) has it too`},
		},
		{
			name: "value types",
			src:  "[polling]\ntick = 10\nrefresh_interval = \"ten minutes\"\nmax_connections = \"20\"\nretention_days = 1.5\n[server]\nlisten = 8087\n",
			want: []string{
				`taskfleet.toml:2: polling.tick: want a duration string such as "10s", not an integer`,
				`taskfleet.toml:3: polling.refresh_interval: want a duration such as "10s", "10m" or "1h30m"`,
				`taskfleet.toml:4: polling.max_connections: want an integer, not a string`,
				`taskfleet.toml:5: polling.retention_days: want an integer, not a float`,
				`taskfleet.toml:7: server.listen: want a string, not an integer`,
			},
		},
		{
			name: "polling ranges",
			src:  "[polling]\ntick = \"1m\"\nrefresh_interval = \"30s\"\nrequest_timeout = \"-1s\"\nmax_connections = 0\nmax_connections_per_remote = -2\nretention_days = 4000\n",
			want: []string{
				`taskfleet.toml:3: polling.refresh_interval: shorter than polling.tick (1m0s)`,
				`taskfleet.toml:4: polling.request_timeout: want a positive duration`,
				`taskfleet.toml:5: polling.max_connections: want at least 1`,
				`taskfleet.toml:6: polling.max_connections_per_remote: want at least 1`,
				`taskfleet.toml:7: polling.retention_days: want 1 to 3650`,
			},
		},
		{
			name: "sub-second tick",
			src:  "[polling]\ntick = \"100ms\"\n",
			want: []string{`taskfleet.toml:2: polling.tick: want at least 1s`},
		},
		{
			name: "listen not loopback without api token",
			edit: [2]string{`listen = "127.0.0.1:8087"`, `listen = ":8087"`},
			want: []string{`taskfleet.toml:2: server.listen: not a loopback address: without an [[api_token]] every request is allowed, so taskfleet listens only on 127.0.0.1, ::1 or localhost`},
		},
		{
			name: "listen malformed",
			edit: [2]string{`listen = "127.0.0.1:8087"`, `listen = "127.0.0.1"`},
			want: []string{`taskfleet.toml:2: server.listen: want host:port, such as "127.0.0.1:8087"`},
		},
		{
			name: "listen on all interfaces with an api token",
			src:  strings.Replace(base, `"127.0.0.1:8087"`, `"[::]:8087"`, 1) + "[[api_token]]\nid = \"ui\"\nsecret = \"0123456789abcdef\"\nremotes = [\"*\"]\n",
		},
		{
			name: "api tokens",
			src: base + `[[api_token]]
id = "ui"
secret = "abc123"
remotes = ["*", "pve-east"]
[[api_token]]
id = "ui"
secret = "0123456789abcdef"
remotes = ["pve-west"]
[[api_token]]
id = "x/y"
secret = "0123456789abcdef"
[[api_token]]
id = "empty"
secret_file = "empty.secret"
remotes = []
`,
			files: map[string]string{"empty.secret": "\n"},
			want: []string{
				`taskfleet.toml:15: api_token[0].secret: secret is shorter than 16 characters`,
				`taskfleet.toml:16: api_token[0].remotes[0]: "*" (all remotes) must be alone`,
				`taskfleet.toml:18: api_token[1].id: duplicate id: api_token[0] has it too`,
				`taskfleet.toml:20: api_token[1].remotes[0]: no remote has this id`,
				`taskfleet.toml:21: api_token[2].remotes: missing: want ["*"] or a list of remote ids`,
				`taskfleet.toml:22: api_token[2].id: want letters, digits and '_', then also '.' and '-' (at most 128 characters)`,
				`taskfleet.toml:23: api_token[2].secret: same secret as api_token[1]: each token needs its own`,
				`taskfleet.toml:26: api_token[3].secret_file: secret file DIR/empty.secret: secret is empty`,
				`taskfleet.toml:27: api_token[3].remotes: empty: want ["*"] or a list of remote ids`,
			},
		},
		{
			name:  "secret file problems",
			edit:  [2]string{`token_secret = "11111111-2222-3333-4444-555555555555"`, `token_secret_file = "missing.secret"`},
			files: map[string]string{},
			want:  []string{`taskfleet.toml:8: remote "pve-east": token_secret_file: read secret: open DIR/missing.secret: no such file or directory`},
		},
		{
			name:  "ca file without certificate",
			edit:  [2]string{`type = "pve"`, "type = \"pve\"\nca_file = \"ca.pem\""},
			files: map[string]string{"ca.pem": "not a certificate\n"},
			want:  []string{`taskfleet.toml:7: remote "pve-east": ca_file: CA file DIR/ca.pem holds no PEM certificate`},
		},
		{
			name: "unknown keys",
			src: strings.Replace(base, `{ url = "https://192.0.2.11:8006" }`, `{ url = "https://192.0.2.11:8006", fingerprnt = "x" }`, 1) + `
[[remote]]
id = "pbs"
type = "pbs"
token_id = "a@pbs!tok"
token_secret = "x-secret"
tokensecret = "oops"
endpoints = [{ url = "https://b" }]

[server.https]
cert = "a"
key = "b"

[polling]
intervall = "5m"
`,
			want: []string{
				`taskfleet.toml:11: remote "pve-east": endpoints[1].fingerprnt: unknown key`,
				`taskfleet.toml:19: remote "pbs": tokensecret: unknown key`,
				`taskfleet.toml:22: server.https: unknown key`,
				`taskfleet.toml:27: polling.intervall: unknown key`,
			},
		},
		{
			name: "unknown array of tables",
			src:  base + "[[remotes]]\nid = \"a\"\n[[remotes]]\nid = \"b\"\n",
			want: []string{
				`taskfleet.toml:13: remotes[0]: unknown key`,
				`taskfleet.toml:15: remotes[1]: unknown key`,
			},
		},
		{
			name: "syntax error",
			src:  "[server]\nlisten = \"127.0.0.1:8087\"\ncache_dir = /var/cache\n",
			want: []string{`taskfleet.toml:3: server.cache_dir: syntax error: expected value but found '/' instead`},
		},
		{
			name: "syntax error does not quote the value",
			src:  "[[remote]]\ntoken_secret = abcdef-secret-value\n",
			want: []string{`taskfleet.toml:2: remote.token_secret: syntax error: expected value but found (text omitted) instead`},
		},
		{
			name: "structure error",
			src:  "server = \"127.0.0.1\"\n",
			want: []string{`taskfleet.toml:1: server: want a table ([server])`},
		},
		{
			name: "endpoints not a list of tables",
			src:  "[[remote]]\nid = \"a\"\nendpoints = \"https://a\"\n",
			want: []string{`taskfleet.toml:3: remote.endpoints: want an array of tables such as [{ url = "https://192.0.2.10:8006" }]`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.src
			if src == "" {
				src = base
			}
			if c.edit[0] != "" {
				if !strings.Contains(src, c.edit[0]) {
					t.Fatalf("edit %q not in the config", c.edit[0])
				}
				src = strings.Replace(src, c.edit[0], c.edit[1], 1)
			}
			dir := t.TempDir()
			writeFiles(t, dir, c.files)
			got := problemsIn(t, src, dir)
			want := make([]string, len(c.want))
			for i, w := range c.want {
				want[i] = strings.ReplaceAll(w, "DIR", dir)
			}
			if !slices.Equal(got, want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// problemsIn is problemsOf with the base directory given.
func problemsIn(t *testing.T, src, dir string) []string {
	t.Helper()
	_, err := Parse([]byte(src), "taskfleet.toml", dir)
	if err == nil {
		return nil
	}
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("Parse error is %T, want *ValidationError: %v", err, err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.String())
	}
	return out
}

// TestEveryProblemIsReported breaks many things at once: all must be
// listed, not just the first.
func TestEveryProblemIsReported(t *testing.T) {
	src := `[server]
listen = "0.0.0.0"
[polling]
tick = "0s"
retention_days = 0
[[remote]]
id = "a"
type = "vmware"
token_id = "x"
endpoints = [{ url = "ftp://h", fingerprint = "zz" }]
[[remote]]
id = "a"
bogus = 1
`
	got := problemsOf(t, src, nil)
	for _, field := range []string{
		"server.listen", "polling.tick", "polling.retention_days",
		`remote "a": type`, `remote "a": token_id`, `remote "a": token_secret`,
		`remote "a": endpoints[0].url`, `remote "a": endpoints[0].fingerprint`,
		`remote "a": id: duplicate`, `remote "a": bogus: unknown key`, `remote "a": endpoints: want at least one`,
	} {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, field) }) {
			t.Errorf("no problem about %s in:\n%s", field, strings.Join(got, "\n"))
		}
	}
	if len(got) != 14 {
		t.Errorf("got %d problems, want 14:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestLoopbackListen(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:1", "127.8.9.10:80", "[::1]:8087", "localhost:8087", "127.0.0.1:0"} {
		src := "[server]\nlisten = \"" + listen + "\"\n"
		if p := problemsOf(t, src, nil); p != nil {
			t.Errorf("listen %s without api token: %q", listen, p)
		}
	}
	for _, listen := range []string{"0.0.0.0:1", "[::]:8087", ":8087", "192.0.2.1:80", "example.org:80"} {
		src := "[server]\nlisten = \"" + listen + "\"\n"
		p := problemsOf(t, src, nil)
		if len(p) != 1 || !strings.Contains(p[0], "not a loopback address") {
			t.Errorf("listen %s without api token: problems %q, want one about loopback", listen, p)
		}
	}
}

func TestTokenID(t *testing.T) {
	for id, ok := range map[string]bool{
		"taskfleet@pve!poll":         true,
		"john@example.com@ldap!tok1": true,
		"root@pam!a.b-c_d":           true,
		"taskfleet@pve":              false,
		"taskfleet!poll":             false,
		"@pve!poll":                  false,
		"a b@pve!poll":               false,
		"a/b@pve!poll":               false,
		"a@p!poll":                   false, // realm of one character
		"a@pve!1tok":                 false,
	} {
		if got := tokenIDPattern.MatchString(id); got != ok {
			t.Errorf("token id %q valid = %v, want %v", id, got, ok)
		}
	}
}
