package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/sim"
)

// runCmd runs the command in-process and returns its exit code and output.
func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// portFleet starts a fleet whose nodes listen on the products' real ports
// (8006, 8007), at a random block of loopback addresses so that other
// fleets running at the same time (tests, demos) do not take them. Node
// discovery needs the real ports: a cluster reports its nodes' addresses
// without ports.
func portFleet(t *testing.T, sc sim.Config) *sim.Fleet {
	t.Helper()
	for range 5 {
		sc.SlotOffset = 254 * (1000 + rand.IntN(50000))
		f := newFleet(t, sc)
		ok := true
		for _, r := range f.Remotes() {
			for _, e := range r.Endpoints {
				ok = ok && (strings.HasSuffix(e.URL, ":8006") || strings.HasSuffix(e.URL, ":8007"))
			}
		}
		if ok {
			return f
		}
		f.Close()
	}
	t.Skip("no block of loopback addresses with free ports 8006 and 8007")
	return nil
}

// TestRemoteAdd: remote add against the simulator adds a 3-node PVE
// cluster and a PBS to an empty configuration with the right endpoints
// and fingerprints, refuses a wrong --fingerprint, warns with the fixing
// command for a token without the audit privilege; the result passes
// check-config --connect and serve polls it; remote list and remove.
func TestRemoteAdd(t *testing.T) {
	t.Parallel()
	fleet := portFleet(t, sim.Config{Seed: 13, PVEClusters: 2, PBSServers: 1, History: 24 * time.Hour, IndexSize: 200})
	dir := t.TempDir()
	remotes := map[string]sim.Remote{}
	for _, r := range fleet.Remotes() {
		remotes[r.ID] = r
		if err := os.WriteFile(filepath.Join(dir, r.ID+".secret"), []byte(r.TokenSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "taskfleet.toml")
	empty := "# The fleet of the first hour.\n[server]\nlisten = \"" + anyPort + "\"  # loopback\ncache_dir = \"cache\"\n"
	if err := os.WriteFile(path, []byte(empty), 0o640); err != nil {
		t.Fatal(err)
	}
	add := func(id string, extra ...string) (int, string, string) {
		r := remotes[id]
		args := []string{"remote", "add", "--config", path, "--token-id", r.TokenID, "--token-secret-file", filepath.Join(dir, id+".secret")}
		return runCmd(append(append(args, extra...), r.Endpoints[0].URL)...)
	}
	pve, pbs := remotes["pve-c001"], remotes["pbs001"]

	// A wrong fingerprint is refused, and nothing is written.
	code, _, stderr := add("pve-c001", "--fingerprint", remotes["pve-c002"].Endpoints[0].Fingerprint)
	if code != exitFailure || !strings.Contains(stderr, "refused: "+pve.Endpoints[0].URL+" presents a certificate with fingerprint "+pve.Endpoints[0].Fingerprint) {
		t.Fatalf("wrong --fingerprint: exit %d, stderr:\n%s", code, stderr)
	}
	// Without --fingerprint and without a terminal, nothing is trusted.
	if code, _, stderr := add("pve-c001"); code != exitFailure || !strings.Contains(stderr, "run again with --fingerprint "+pve.Endpoints[0].Fingerprint) {
		t.Fatalf("no --fingerprint: exit %d, stderr:\n%s", code, stderr)
	}
	if data, _ := os.ReadFile(path); string(data) != empty {
		t.Fatalf("refused adds changed the file:\n%s", data)
	}

	// The PVE cluster, fingerprint pasted in lower case without colons;
	// the PBS with openssl's output.
	lowerBare := strings.ToLower(strings.ReplaceAll(pve.Endpoints[0].Fingerprint, ":", ""))
	code, stdout, stderr := add("pve-c001", "--fingerprint", lowerBare)
	if code != exitOK || stderr != "" {
		t.Fatalf("add pve-c001: exit %d, stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"subject      CN=pve-c001-n1", "(self-signed)", "valid        1990-01-01 to 2200-01-01 (valid now)",
		"fingerprint  " + pve.Endpoints[0].Fingerprint, "Proxmox VE node 8.3.2", "Sys.Audit on /", `Added remote "pve-c001" (3 endpoints)`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("add pve-c001: no %q in:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = add("pbs001", "--fingerprint", "sha256 Fingerprint="+pbs.Endpoints[0].Fingerprint)
	if code != exitOK || stderr != "" || !strings.Contains(stdout, "Proxmox Backup Server 3.2.4") {
		t.Fatalf("add pbs001: exit %d, stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Remotes) != 2 {
		t.Fatalf("%d remotes, want 2", len(cfg.Remotes))
	}
	for _, r := range cfg.Remotes {
		want := remotes[r.ID]
		if len(r.Endpoints) != len(want.Endpoints) || r.Type != want.Kind || r.TokenID != want.TokenID || r.TokenSecret.Reveal() != want.TokenSecret {
			t.Fatalf("remote %s: %+v, want %+v", r.ID, r, want)
		}
		for i, e := range r.Endpoints {
			if e.URL != want.Endpoints[i].URL || e.Fingerprint != want.Endpoints[i].Fingerprint {
				t.Errorf("remote %s endpoint %d: %s %s, want %s %s", r.ID, i, e.URL, e.Fingerprint, want.Endpoints[i].URL, want.Endpoints[i].Fingerprint)
			}
		}
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), empty) || !strings.Contains(string(data), "# node pve-c001-n3") {
		t.Errorf("the file lost its comments or has no node comments:\n%s", data)
	}
	if code, _, stderr := add("pbs001", "--fingerprint", pbs.Endpoints[0].Fingerprint); code != exitFailure || !strings.Contains(stderr, `a remote "pbs001" exists already`) {
		t.Errorf("adding pbs001 twice: exit %d: %s", code, stderr)
	}

	// A token that sees only its own tasks: the warning with the command
	// that fixes it, for PVE and PBS; --dry-run prints the block.
	fleet.SetFault("pve-c002", "", sim.Fault{NoAudit: true})
	fleet.SetFault("pbs001", "", sim.Fault{NoAudit: true})
	code, stdout, stderr = add("pve-c002", "--dry-run", "--fingerprint", remotes["pve-c002"].Endpoints[0].Fingerprint)
	if code != exitOK || !strings.Contains(stderr, "lacks Sys.Audit on /") ||
		!strings.Contains(stderr, "pveum acl modify / --roles PVEAuditor --users taskfleet@pve --tokens 'taskfleet@pve!poll'") ||
		!strings.Contains(stdout, "--dry-run: the block") || !strings.Contains(stdout, `id = "pve-c002-n1"`) {
		t.Errorf("pve token without audit: exit %d, stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	code, _, stderr = add("pbs001", "--dry-run", "--id", "pbs-other", "--fingerprint", pbs.Endpoints[0].Fingerprint)
	if code != exitOK || !strings.Contains(stderr, "proxmox-backup-manager acl update / Audit --auth-id taskfleet@pbs\n") ||
		!strings.Contains(stderr, "proxmox-backup-manager acl update / Audit --auth-id 'taskfleet@pbs!poll'") {
		t.Errorf("pbs token without audit: exit %d, stderr:\n%s", code, stderr)
	}
	if code, stdout, _ := runCmd("check-config", "--connect", path); code != exitOK || !strings.Contains(stdout, "warning: the token lacks the audit privilege") {
		t.Errorf("check-config --connect with a pbs token without audit: exit %d:\n%s", code, stdout)
	}
	fleet.SetFault("pve-c002", "", sim.Fault{})
	fleet.SetFault("pbs001", "", sim.Fault{})
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Error("--dry-run changed the file")
	}

	// The result passes check-config --connect, and serve polls it.
	code, stdout, _ = runCmd("check-config", "--connect", path)
	if code != exitOK || !strings.Contains(stdout, `remote "pve-c001": ok: 3 endpoints`) || !strings.Contains(stdout, `remote "pbs001": ok: 1 endpoints`) || strings.Contains(stdout, "warning") {
		t.Fatalf("check-config --connect: exit %d:\n%s", code, stdout)
	}
	srv := serveInProcess(t, path)
	c := srv.c
	// The waited refresh ends with a fetch of each remote done; it may
	// report 0 new tasks when serve's first poll (at the first phase tick
	// after start) got there first, so count what serve holds instead.
	res := c.refreshAll("")
	if len(res) != 2 {
		t.Fatalf("refresh: %+v", res)
	}
	for _, r := range res {
		if n := len(c.list("", url.Values{"remote": {r.Remote}})); n == 0 {
			t.Errorf("serve holds no tasks of %s", r.Remote)
		}
	}
	// A remote whose node list fails says so once ("list nodes: list
	// nodes:" was said twice).
	fleet.SetFault("pve-c001", "", sim.Fault{Status: 500})
	var failed []api.RefreshResult
	c.do(http.MethodPost, "/api2/json/remotes/tasks/refresh", "", url.Values{"wait": {"1"}, "remotes": {"pve-c001"}}).ok(t, &failed)
	if len(failed) != 1 || !strings.Contains(failed[0].Error, "list nodes: ") || strings.Count(failed[0].Error, "list nodes:") != 1 {
		t.Errorf("refresh of a remote whose node list fails: %+v", failed)
	}
	fleet.SetFault("pve-c001", "", sim.Fault{})
	// With serve running, its address is taken by a taskfleet: fine. The
	// file names port 0, so a copy names the port serve was given.
	bound := filepath.Join(dir, "taskfleet-bound.toml")
	if err := os.WriteFile(bound, bytes.Replace(data, []byte(anyPort), []byte(strings.TrimPrefix(c.base, "http://")), 1), 0o640); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := runCmd("check-config", bound); code != exitOK {
		t.Errorf("check-config while serve runs on its address: exit %d:\n%s", code, stdout)
	}
	srv.stop()

	// --connect names the endpoint, its line and the error class of a
	// certificate that is not the pinned one.
	fleet.SetFault("pbs001", "", sim.Fault{WrongCert: true})
	code, stdout, _ = runCmd("check-config", "--connect", path)
	pbsLine := strings.Count(string(data[:strings.Index(string(data), `{ url = "`+pbs.Endpoints[0].URL)]), "\n") + 1
	if want := fmt.Sprintf("%s:%d: remote \"pbs001\": endpoints[0]: cert_mismatch: %s", path, pbsLine, pbs.Endpoints[0].URL); code != exitFailure || !strings.Contains(stdout, want) {
		t.Errorf("check-config --connect with a wrong certificate: exit %d:\n%s\nwant a line starting %s", code, stdout, want)
	}
	fleet.SetFault("pbs001", "", sim.Fault{})

	// remote list, remove.
	if code, stdout, _ := runCmd("remote", "list", "--config", path); code != exitOK || !strings.Contains(stdout, "pve-c001  pve   3") || !strings.Contains(stdout, "pbs001") {
		t.Errorf("remote list: exit %d:\n%s", code, stdout)
	}
	if code, stdout, stderr := runCmd("remote", "remove", "--config", path, "pve-c001"); code != exitOK || !strings.Contains(stdout, `removed remote "pve-c001"`) {
		t.Fatalf("remote remove: exit %d: %s%s", code, stdout, stderr)
	}
	cfg, err = config.Load(path)
	if err != nil || len(cfg.Remotes) != 1 || cfg.Remotes[0].ID != "pbs001" {
		t.Fatalf("after remove: %v %+v", err, cfg)
	}
	if data, _ := os.ReadFile(path); !strings.HasPrefix(string(data), empty) || strings.Contains(string(data), "pve-c001") {
		t.Errorf("after remove:\n%s", data)
	}
}

// TestCheckConfigWhatServeNeeds: a port taken by another program and a
// cache_dir that cannot be created are reported with the key and the
// line, exit 1; serve names them the same way.
func TestCheckConfigWhatServeNeeds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	blocker := filepath.Join(dir, "not-a-dir")
	os.WriteFile(blocker, []byte("x"), 0o600)
	path := filepath.Join(dir, "taskfleet.toml")
	os.WriteFile(path, []byte("# taken port, impossible cache dir\n[server]\nlisten = \""+ln.Addr().String()+"\"\ncache_dir = \""+blocker+"/cache\"\n"), 0o600)
	code, stdout, _ := runCmd("check-config", path)
	want := []string{
		path + ":3: server.listen: " + ln.Addr().String() + " is in use by another program",
		path + ":4: server.cache_dir: " + blocker + "/cache cannot be created",
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitFailure || len(lines) != 2 || !strings.HasPrefix(lines[0], want[0]) || !strings.HasPrefix(lines[1], want[1]) {
		t.Errorf("check-config: exit %d:\n%s\nwant exit 1 and lines starting\n%s", code, stdout, strings.Join(want, "\n"))
	}
	code, _, stderr := runCmd("serve", "--config", path)
	if code != exitFailure || !strings.Contains(stderr, `"field":"server.cache_dir","line":4`) || !strings.Contains(stderr, path+":4: server.cache_dir:") {
		t.Errorf("serve: exit %d:\n%s", code, stderr)
	}
	os.WriteFile(path, []byte("[server]\nlisten = \""+ln.Addr().String()+"\"\ncache_dir = \"cache\"\n"), 0o600)
	code, _, stderr = runCmd("serve", "--config", path)
	if code != exitFailure || !strings.Contains(stderr, `"field":"server.listen","line":2`) {
		t.Errorf("serve: exit %d:\n%s", code, stderr)
	}
}

// TestRemoteRemoveRefusesBreakingEdit: a remote an [[api_token]] names
// is not removed, and the file stays as it was.
func TestRemoteRemoveRefusesBreakingEdit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "taskfleet.toml")
	src := `[server]
cache_dir = "cache"

# East.
[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "0123456789abcdef0123"
endpoints = [ { url = "https://192.0.2.10:8006" } ]

[[api_token]]
id = "team"
secret = "team-secret-0123456789"
remotes = ["pve-east"]
`
	os.WriteFile(path, []byte(src), 0o600)
	code, _, stderr := runCmd("remote", "remove", "--config", path, "pve-east")
	if code != exitFailure || !strings.Contains(stderr, "would be invalid") || !strings.Contains(stderr, "api_token[0].remotes[0]: no remote has this id") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if data, _ := os.ReadFile(path); string(data) != src {
		t.Errorf("the file changed:\n%s", data)
	}
	if code, stdout, _ := runCmd("remote", "remove", "--dry-run", "--config", "/nonexistent.toml", "x"); code != exitFailure {
		t.Errorf("missing file: exit %d %s", code, stdout)
	}
}
