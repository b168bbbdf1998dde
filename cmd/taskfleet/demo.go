package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/sim"
)

const demoAbout = `Run a simulated fleet (by default 20 PVE clusters of 3 nodes and 5 PBS
servers with lively task activity, on loopback addresses) and the daemon in
one process, until Ctrl-C. The daemon runs exactly as serve does, from a
configuration file written for the fleet; its data lives in a temporary
directory, removed on exit, unless --cache-dir is given.`

// demoListen is the demo's default API address; when it is busy the demo
// takes a free port.
const demoListen = "127.0.0.1:8087"

// runDemo is the demo command.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[flags]", demoAbout, stderr)
	cacheDir := fs.String("cache-dir", "", "keep the cache in `dir` (default: a temporary directory, removed on exit)")
	listen := fs.String("listen", demoListen, "address of the API (a loopback address: the demo has no API token)")
	refresh := fs.Duration("refresh-interval", time.Minute, "how often each remote's task lists are fetched")
	sc := sim.Config{}
	simFlags(fs, &sc, 20, 5, 30)
	var lf logFlags
	lf.register(fs, "console")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	listenSet := false
	fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })

	// The configuration and the secret files are written anew each run
	// (the fleet's certificates are new), into a directory removed on exit.
	dir, err := os.MkdirTemp("", "taskfleet-demo-")
	if err != nil {
		log.Error().Err(err).Msg("demo not started")
		return exitFailure
	}
	defer os.RemoveAll(dir)
	if *cacheDir == "" {
		*cacheDir = filepath.Join(dir, "cache")
	}

	sc.Logger = log.With().Str("component", "sim").Logger()
	fleet, err := sim.New(sc)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	if err := fleet.Start(); err != nil {
		log.Error().Err(err).Msg("simulated fleet not started")
		return exitFailure
	}
	defer fleet.Close() // on early returns; the group closes it otherwise
	ln, err := listenDemo(*listen, !listenSet, log)
	if err != nil {
		log.Error().Err(err).Msg("demo not started")
		return exitFailure
	}
	path, err := fleet.WriteDaemonConfig(dir, sim.DaemonOptions{Listen: ln.Addr().String(), CacheDir: *cacheDir, RefreshInterval: *refresh})
	if err != nil {
		ln.Close()
		log.Error().Err(err).Msg("demo not started")
		return exitFailure
	}
	cfg, err := loadConfig(log, path) // the real loader, as serve uses it
	if err != nil {
		ln.Close()
		return exitUsage
	}
	if err := checkCacheDir(cfg.Server.CacheDir); err != nil {
		ln.Close()
		log.Error().Err(err).Msg("demo not started")
		return exitFailure
	}
	log.Info().Int("pve_clusters", sc.PVEClusters).Int("pbs_servers", sc.PBSServers).Str("config", path).Msg("simulated fleet running")

	d := newDaemon(path, cfg, ln, log)
	d.refreshAtStart = true
	d.activityEvery = 30 * time.Second
	d.started = func(*taskfleet.Service) {
		// One write, so that a reader never sees half of it.
		var b strings.Builder
		printDemoHelp(&b, ln.Addr().String(), len(cfg.Remotes))
		printDemoAccess(&b, cfg)
		io.WriteString(stdout, b.String())
	}

	var g run.Group
	{ // Termination: Ctrl-C, SIGTERM (or ctx) end the group; see daemon.addTo for the stop order.
		g.Add(termination(ctx))
	}
	d.addTo(&g)
	{ // The simulated fleet, stopped last: the service's stop cancels its
		// in-flight fetches; closing the fleet before would only turn them
		// into connection errors.
		quit := make(chan struct{})
		g.Add(func() error {
			<-quit
			return nil
		}, func(error) {
			close(quit)
			fleet.Close()
			log.Info().Msg("simulated fleet stopped")
		})
	}
	return d.wait(&g)
}

// listenDemo binds the demo's API address, or a free port on the same
// host when the address is busy and fallback is allowed.
func listenDemo(addr string, fallback bool, log zerolog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil || !fallback || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	host, _, _ := net.SplitHostPort(addr)
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, err
	}
	log.Warn().Str("busy", addr).Str("listen", ln.Addr().String()).Msg("address in use: listening on a free port")
	return ln, nil
}

// printDemoHelp tells where the API is, with commands to try.
func printDemoHelp(w io.Writer, addr string, remotes int) {
	url := "http://" + addr
	self := "taskfleet"
	if strings.Contains(os.Args[0], "go-build") { // go run
		self = "go run ./cmd/taskfleet"
	}
	fmt.Fprintf(w, `
The task page: %s/

taskfleet demo: %d simulated remotes; the API is at %s/api2/json

  curl -s '%s/api2/json/remotes/tasks/list?limit=5' | jq
  curl -s '%s/api2/json/remotes/tasks/statistics' | jq
  curl -s '%s/api2/json/remotes/status' | jq
  %s tasks list --url %s --limit 10

Tasks arrive as the remotes are backfilled. Press Ctrl-C to stop.

`, url, remotes, url, url, url, url, self, url)
}
