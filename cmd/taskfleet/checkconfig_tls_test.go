package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/config"
)

// TestCheckConfigTLSRules: check-config applies serve's TLS rules
// (decideTLS): what serve refuses, check-config reports at the key, and a
// self-signed certificate that would be generated needs a writable
// state_dir (or cache_dir).
func TestCheckConfigTLSRules(t *testing.T) {
	dir := t.TempDir()
	notLoopback := freeNotLoopbackAddr(t)
	loopback := anyPort // check-config binds it
	blocker := filepath.Join(dir, "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := notLoopbackCtx(context.Background())
	for _, tc := range []struct {
		name   string
		server string // [server] lines besides cache_dir
		want   string // the problem's key and start of its message, "" for ok
	}{
		{name: "tls off, not loopback", server: fmt.Sprintf("listen = %q\ntls = \"off\"", notLoopback), want: `server.tls: server.listen ` + notLoopback + ` is not a loopback address and server.tls is "off"`},
		{name: "tls off, not loopback, insecure_http", server: fmt.Sprintf("listen = %q\ntls = \"off\"\ninsecure_http = true", notLoopback)},
		{name: "tls auto, not loopback", server: fmt.Sprintf("listen = %q", notLoopback)},
		{name: "tls off, loopback", server: fmt.Sprintf("listen = %q\ntls = \"off\"", loopback)},
		{name: "self-signed, state_dir cannot be created", server: fmt.Sprintf("listen = %q\ntls = \"on\"\nstate_dir = %q", loopback, filepath.Join(blocker, "state")),
			want: "server.state_dir: the API's self-signed certificate is to be generated there: " + filepath.Join(blocker, "state") + " cannot be created"},
		{name: "self-signed, state_dir writable", server: fmt.Sprintf("listen = %q\ntls = \"on\"\nstate_dir = %q", loopback, filepath.Join(dir, "state"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "taskfleet.toml")
			content := fmt.Sprintf(`[server]
cache_dir = "cache"
%s

[[api_token]]
id = "ops"
secret = "0123456789abcdef0123"
remotes = ["*"]

[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "d63e505a-e3ec-449a-9bc7-1da610d4ccde"
endpoints = [ { url = "https://192.0.2.10" } ]
`, tc.server)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := dispatch(ctx, []string{"check-config", path}, &stdout, &stderr)
			if tc.want == "" {
				if code != exitOK || stdout.String() != "ok: 1 remotes\n" {
					t.Errorf("exit %d, stdout %q, stderr %q; want ok", code, stdout.String(), stderr.String())
				}
				return
			}
			if code != exitFailure || !strings.Contains(stdout.String(), ": "+tc.want) {
				t.Errorf("exit %d, stdout %q; want 1 and %q", code, stdout.String(), tc.want)
			}
			// serve refuses what check-config reports.
			mode, err := decideTLS(mustLoad(t, path).Server, &net.TCPAddr{IP: net.ParseIP(notLoopbackIP)}, false)
			if strings.HasPrefix(tc.want, "server.tls:") && err == nil {
				t.Errorf("decideTLS = %v, nil; serve would start", mode)
			}
		})
	}
}

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
