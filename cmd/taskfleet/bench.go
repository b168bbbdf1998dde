package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/taskfleet/taskfleet/internal/bench"
)

const benchAbout = `Measure taskfleet against a simulated fleet in this process and print the
results as tables (--json: as JSON): 1. sweep time against its physical
bound, 2. freshness of the task list, 3. list and statistics latency against
SQLite and a PDM-style scan of the archive, 4. ingest rate, 5. memory,
6. a sweep of 10,000 remotes, 7. the production schedule (10 s ticks,
10-minute refreshes, pveproxy's connection rules) over a simulated hour for
1,000 and 10,000 remotes, with change detection off and on (only with
--only schedule: it takes half an hour or more), 8. the Go heap per poller
at 1,000 and 10,000 remotes, the fleet's excluded (only with --only pollers). The default sizes take about five minutes on a
2-core machine; --quick runs tiny sizes in seconds. docs/benchmarks.md holds
the latest full run. The SQLite comparison of sections 3 and 4 is built only
with the sqlite tag, to keep the driver out of the taskfleet binary:
go run -tags sqlite ./cmd/taskfleet bench.`

// runBench is the bench command.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "[flags]", benchAbout, stderr)
	quick := fs.Bool("quick", false, "tiny sizes: every section in a few seconds")
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of tables")
	var only stringList
	fs.Var(&only, "only", "run only these sections (comma-separated): "+strings.Join(bench.Sections, ","))
	var sweeps stringList
	fs.Var(&sweeps, "sweep", `sweep cases instead of the default ones, REMOTESxCAP[@loopback], e.g. "5000x20" (comma-separated)`)
	var schedRemotes stringList
	fs.Var(&schedRemotes, "schedule-remotes", "fleet sizes of the schedule section (comma-separated; default 1000,10000)")
	schedSpeed := fs.Int("schedule-speed", 0, "how many times faster than real time the schedule section runs (default 4: a simulated hour in 15 minutes)")
	schedDuration := fs.Duration("schedule-duration", 0, "simulated time the schedule section measures per run (default 1h)")
	afterOnly := fs.Bool("schedule-after-only", false, "the schedule section runs only the case with change detection on")
	var pollers stringList
	fs.Var(&pollers, "pollers", "fleet sizes of the pollers section (comma-separated; default 1000,10000)")
	pollersTick := fs.Duration("pollers-tick", 0, "polling tick of the pollers section (default 10s; 24h leaves only its refreshes)")
	pollersSweeps := fs.Int("pollers-sweeps", 0, "full refreshes before the pollers section measures (default 2: the backfill and a steady one)")
	profileDir := fs.String("profile-dir", "", "directory that receives the sweeps' and the schedule runs' CPU profiles and the pollers section's heap profiles")
	scaleSteady := fs.Int("scale-steady", 0, "steady sweeps of the scale section after the first (default 1; with more, the table shows each and their median)")
	large := fs.Bool("large", false, "also run the 5000-remote sweeps (5000x20 and 5000x100: about 5 more minutes on 2 cores)")
	rtt := fs.Duration("rtt", 0, "round-trip time injected into the simulated remotes (default 50ms, 5ms with --quick)")
	simTime := fs.String("sim-time", "14:00", `UTC time of day the simulated fleets' clocks start at, HH:MM ("now": the wall clock); the nightly backups (01:00-05:00) keep about one task per node running`)
	dir := fs.String("dir", "", "directory for the temporary caches and databases (default: the system's temporary directory)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	cfg := bench.Defaults()
	if *quick {
		cfg = bench.Quick()
	}
	if len(only) > 0 {
		cfg.Sections = only
	}
	cfg.Dir = *dir
	if len(sweeps) > 0 {
		cases, err := parseSweepCases(sweeps)
		if err != nil {
			return usageError(fs, "--sweep: %v", err)
		}
		cfg.Sweep.Cases = cases
	}
	if len(schedRemotes) > 0 {
		cfg.Schedule.Remotes = nil
		for _, it := range schedRemotes {
			n, err := strconv.Atoi(it)
			if err != nil || n < 1 {
				return usageError(fs, "--schedule-remotes: %q is not a positive number", it)
			}
			cfg.Schedule.Remotes = append(cfg.Schedule.Remotes, n)
		}
	}
	cfg.Schedule.AfterOnly = *afterOnly
	if len(pollers) > 0 {
		cfg.Pollers.Remotes = nil
		for _, it := range pollers {
			n, err := strconv.Atoi(it)
			if err != nil || n < 1 {
				return usageError(fs, "--pollers: %q is not a positive number", it)
			}
			cfg.Pollers.Remotes = append(cfg.Pollers.Remotes, n)
		}
	}
	if *pollersTick < 0 || *pollersSweeps < 0 {
		return usageError(fs, "--pollers-tick and --pollers-sweeps must not be negative")
	}
	if *pollersTick > 0 {
		cfg.Pollers.Tick = *pollersTick
	}
	if *pollersSweeps > 0 {
		cfg.Pollers.Sweeps = *pollersSweeps
	}
	if *profileDir != "" {
		// The sections write their profiles at the end of each case and
		// cannot stop the run for it: the directory must exist first.
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "taskfleet bench: --profile-dir: %v\n", err)
			return 1
		}
	}
	cfg.Sweep.ProfileDir, cfg.Pollers.ProfileDir, cfg.Schedule.ProfileDir = *profileDir, *profileDir, *profileDir
	if *schedSpeed < 0 || *schedDuration < 0 {
		return usageError(fs, "--schedule-speed and --schedule-duration must not be negative")
	}
	if *schedSpeed > 0 {
		cfg.Schedule.Speed = *schedSpeed
	}
	if *schedDuration > 0 {
		cfg.Schedule.Duration = *schedDuration
	}
	if *large {
		cfg.Sweep.Cases = append(cfg.Sweep.Cases, bench.LargeSweeps...)
	}
	switch *simTime {
	case "now":
		cfg.SetFleetStart(time.Time{})
	default:
		tod, err := time.Parse("15:04", *simTime)
		if err != nil {
			return usageError(fs, "--sim-time %q: want HH:MM or now", *simTime)
		}
		cfg.SetFleetStart(bench.PinnedStart(time.Now(), time.Duration(tod.Hour())*time.Hour+time.Duration(tod.Minute())*time.Minute))
	}
	if *scaleSteady < 0 {
		return usageError(fs, "--scale-steady %d: must not be negative", *scaleSteady)
	}
	if *scaleSteady > 0 {
		cfg.Scale.SteadySweeps = *scaleSteady
	}
	if *rtt < 0 {
		return usageError(fs, "--rtt %v: must not be negative", *rtt)
	}
	if *rtt > 0 {
		cfg.Sweep.RTT, cfg.Freshness.RTT, cfg.Scale.RTT, cfg.Schedule.RTT = *rtt, *rtt, *rtt, *rtt
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	report, err := bench.Run(ctx, cfg)
	if report == nil {
		fmt.Fprintf(stderr, "taskfleet bench: %v\n", err)
		return exitUsage
	}
	report.Command = strings.TrimSpace("taskfleet bench " + strings.Join(args, " "))
	if *jsonOut {
		if werr := report.WriteJSON(stdout); werr != nil {
			fmt.Fprintf(stderr, "taskfleet bench: %v\n", werr)
			return exitFailure
		}
	} else if werr := report.WriteText(stdout); werr != nil {
		fmt.Fprintf(stderr, "taskfleet bench: %v\n", werr)
		return exitFailure
	}
	if err != nil {
		fmt.Fprintf(stderr, "taskfleet bench: %v\n", err)
		return exitFailure
	}
	if !*quiet {
		fmt.Fprintf(stderr, "taskfleet bench: done in %.0fs\n", time.Since(start).Seconds())
	}
	return exitOK
}

// parseSweepCases parses "5000x20" and "100x20@loopback".
func parseSweepCases(items []string) ([]bench.SweepCase, error) {
	var out []bench.SweepCase
	for _, it := range items {
		spec, network, _ := strings.Cut(it, "@")
		if network == "" {
			network = bench.NetworkMemory
		}
		if network != bench.NetworkMemory && network != bench.NetworkLoopback {
			return nil, fmt.Errorf("%q: network %q, want %s or %s", it, network, bench.NetworkMemory, bench.NetworkLoopback)
		}
		n, c, ok := strings.Cut(spec, "x")
		remotes, err1 := strconv.Atoi(n)
		capacity, err2 := strconv.Atoi(c)
		if !ok || err1 != nil || err2 != nil || remotes < 1 || capacity < 1 {
			return nil, fmt.Errorf("%q: want REMOTESxCAP, e.g. 1000x20", it)
		}
		out = append(out, bench.SweepCase{Remotes: remotes, GlobalCap: capacity, Network: network})
	}
	return out, nil
}
