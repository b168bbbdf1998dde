package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeDemoMarker precedes the README's block of commands for the demo.
const readmeDemoMarker = "<!-- demo-commands:"

// readmeDemoLines returns the command lines of the README's demo block:
// continuation lines joined, comments and blank lines left out.
func readmeDemoLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), readmeDemoMarker)
	if !ok {
		t.Fatalf("README.md has no %q marker before its demo commands", readmeDemoMarker)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no ```sh block after the demo marker")
	}
	var lines []string
	cont := ""
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, `\`) {
			cont += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	return lines
}

// TestREADMEDemoCommands runs every command line of the README's demo
// section against a running demo, in order, in one shell (so that
// variables carry over); each must succeed (curl -f fails on an HTTP
// error). Only the address (the test's demo listens on a free port) and
// "go run ./cmd/taskfleet" (the binary built for the tests) are replaced.
func TestREADMEDemoCommands(t *testing.T) {
	t.Parallel()
	lines := readmeDemoLines(t)
	if len(lines) < 10 {
		t.Fatalf("only %d command lines in the README's demo block", len(lines))
	}
	for _, tool := range []string{"bash", "curl", "grep", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install %s)", tool, tool)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "pve-east") || strings.Contains(l, "pbs-1") || strings.Contains(l, "/etc/taskfleet") {
			t.Errorf("README demo line names a production remote or file: %s", l)
		}
	}
	// Port 0: the demo binds a free port and prints it (a port picked
	// here could be taken by another test before the demo binds it).
	p := start(t, "demo", "--pve", "2", "--pbs", "1", "--listen", anyPort, "--log-format", "json")
	base := demoAPI(t, p)
	if out := p.stdout.String(); !strings.Contains(out, "No API token") || !strings.Contains(out, "pve-c001") || !strings.Contains(out, "pbs001") {
		t.Errorf("the demo does not say it has no token and how its remotes are named:\n%s", out)
	}
	r := strings.NewReplacer("http://127.0.0.1:8087", base, "go run ./cmd/taskfleet", binary(t))
	var script strings.Builder
	script.WriteString("set -eo pipefail\n")
	for i, l := range lines {
		fmt.Fprintf(&script, "echo '>>> line %d' >&2\n%s\n", i, r.Replace(l))
	}
	cmd := exec.Command("bash", "-c", script.String())
	// The CLI defaults to the demo's 127.0.0.1:8087; this demo is elsewhere.
	cmd.Env = append(os.Environ(), "TASKFLEET_TOKEN=", "TASKFLEET_URL="+base, "NO_COLOR=1")
	// bash and the commands it starts are one process group, killed
	// together on a timeout: a child left alive would keep the output
	// pipe open and the wait below would hang.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		defer close(done)
		out, err = cmd.CombinedOutput()
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("README commands still running after 3 minutes:\n%s", tail(string(out), 3000))
	}
	if err != nil {
		failed := "?"
		if i := strings.LastIndex(string(out), ">>> line "); i >= 0 {
			var n int
			fmt.Sscanf(string(out[i:]), ">>> line %d", &n)
			failed = lines[n]
		}
		t.Fatalf("README demo line failed (%v): %s\noutput:\n%s", err, failed, tail(string(out), 3000))
	}
	for _, want := range []string{`"remote":"pve-c001"`, "REMOTE", "pbs001", "taskfleet_tasks_cached", "tracking pve:pve-c001!UPID:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in the output of the README's demo commands:\n%s", want, tail(string(out), 3000))
		}
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("demo exit code %d after SIGINT", code)
	}
}

// TestREADMEGoSnippetBuilds compiles the README's embedding example, as a
// package of the module (an overlay, nothing is written into the tree):
// a missing import or a wrong name fails.
func TestREADMEGoSnippetBuilds(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "## Embedding it as a library")
	_, rest, ok2 := strings.Cut(rest, "```go\n")
	code, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md: no ```go block in the embedding section")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "snippet.go")
	if err := os.WriteFile(src, []byte("package readmesnippet\n\n"+code), 0o600); err != nil {
		t.Fatal(err)
	}
	target, err := filepath.Abs(filepath.Join("..", "..", "internal", "readmesnippet", "snippet.go"))
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{target: src}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", ov, "./internal/readmesnippet/")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the README's embedding example does not build: %v\n%s", err, out)
	}
}
