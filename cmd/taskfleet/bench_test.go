package main

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/internal/bench"
)

func TestParseSweepCases(t *testing.T) {
	got, err := parseSweepCases([]string{"5000x20", "100x100@loopback"})
	if err != nil {
		t.Fatal(err)
	}
	want := []bench.SweepCase{
		{Remotes: 5000, GlobalCap: 20, Network: bench.NetworkMemory},
		{Remotes: 100, GlobalCap: 100, Network: bench.NetworkLoopback},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseSweepCases = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"5000", "x20", "0x20", "10x0", "10x5@tcp", "axb"} {
		if _, err := parseSweepCases([]string{bad}); err == nil {
			t.Errorf("parseSweepCases(%q) accepted", bad)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"extra"}, {"--sweep", "nope"}, {"--rtt", "-1s"}, {"--sim-time", "25:99"}, {"--pollers", "0"}, {"--scale-steady", "-1"}} {
		var out, errb bytes.Buffer
		if code := runBench(args, &out, &errb); code != exitUsage {
			t.Errorf("runBench(%q) = %d, want %d; stderr:\n%s", args, code, exitUsage, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := runBench([]string{"--quick", "--only", "nonsense"}, &out, &errb); code == exitOK {
		t.Errorf("unknown section accepted")
	}
}

// TestBenchQuickJSON runs two quick sections through the command and
// checks that the JSON report parses and holds them.
func TestBenchQuickJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := runBench([]string{"--quick", "--json", "--quiet", "--only", "queries,ingest", "--dir", t.TempDir()}, &out, &errb)
	if code != exitOK {
		t.Fatalf("runBench = %d; stderr:\n%s", code, errb.String())
	}
	var r bench.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if r.Queries == nil || len(r.Queries.Lists) == 0 || r.Ingest == nil || r.Sweep != nil {
		t.Errorf("report sections: queries %v, ingest %v, sweep %v", r.Queries != nil, r.Ingest != nil, r.Sweep != nil)
	}
	if !strings.HasPrefix(r.Command, "taskfleet bench --quick") {
		t.Errorf("command = %q", r.Command)
	}
}

// TestNoSQLiteLinked checks that the taskfleet command does not link the
// SQLite driver, which only the bench's comparison needs (issue 12: a
// newcomer's first "go run ./cmd/taskfleet demo" must not compile it). The
// test binary links what the command links.
func TestNoSQLiteLinked(t *testing.T) {
	if bench.SQLiteBuiltIn() {
		t.Skip("built with -tags sqlite")
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build information in this binary")
	}
	zerolog := false
	for _, d := range info.Deps {
		zerolog = zerolog || d.Path == "github.com/rs/zerolog"
		if strings.Contains(d.Path, "sqlite") {
			t.Errorf("the taskfleet command links %s %s; keep it behind the sqlite build tag", d.Path, d.Version)
		}
	}
	if !zerolog {
		t.Errorf("build information lists no github.com/rs/zerolog: it cannot show what is linked (%d deps)", len(info.Deps))
	}
}
