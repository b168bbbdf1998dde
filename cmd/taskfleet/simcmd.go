package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/taskfleet/taskfleet/sim"
)

const simAbout = `Run a simulated fleet of Proxmox VE clusters and Proxmox Backup Servers on
loopback addresses until interrupted, and write a configuration for serve
pointing at it: DIR/taskfleet.toml and one DIR/REMOTE.secret per remote.
The certificates are kept in DIR/sim-certs.pem: run again with the same
DIR, the fleet presents the same certificates, so the fingerprints in the
configuration stay valid.
Then run, in another terminal, the serve command it prints.`

// simCertFile is where sim keeps its fleet's certificates, in --out.
const simCertFile = "sim-certs.pem"

// simFlags registers the flags that shape a simulated fleet on fs.
func simFlags(fs *flag.FlagSet, c *sim.Config, pve, pbs int, rate float64) {
	fs.IntVar(&c.PVEClusters, "pve", pve, "number of simulated PVE clusters")
	fs.IntVar(&c.NodesPerCluster, "nodes", sim.DefaultNodesPerCluster, "nodes per PVE cluster")
	fs.IntVar(&c.PBSServers, "pbs", pbs, "number of simulated PBS servers")
	fs.Int64Var(&c.Seed, "seed", 1, "seed of the simulated activity")
	fs.Float64Var(&c.TaskRate, "rate", rate, "mean tasks per PVE node and hour outside the nightly backup")
}

// runSim is the sim command.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sim", "--out DIR [flags]", simAbout, stderr)
	out := fs.String("out", "", "directory for taskfleet.toml and the token secret files (required)")
	listen := fs.String("listen", "127.0.0.1:8087", "server.listen written into the configuration")
	var sc sim.Config
	simFlags(fs, &sc, 8, 2, sim.DefaultTaskRate)
	fs.DurationVar(&sc.History, "history", sim.DefaultHistory, "activity that exists before the start")
	var lf logFlags
	lf.register(fs, "console")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	case *out == "":
		return usageError(fs, "--out DIR is required")
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	// The certificates are kept beside the configuration, so that a
	// restarted sim presents the same ones and a serve running on the
	// configuration it wrote keeps working.
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Error().Err(err).Msg("simulated fleet not started")
		return exitFailure
	}
	sc.CertFile = filepath.Join(*out, simCertFile)
	sc.Logger = log.With().Str("component", "sim").Logger()
	fleet, err := sim.New(sc)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	if err := fleet.Start(); err != nil {
		log.Error().Err(err).Msg("simulated fleet not started")
		return exitFailure
	}
	defer fleet.Close()
	path, err := fleet.WriteDaemonConfig(*out, sim.DaemonOptions{Listen: *listen})
	if err != nil {
		log.Error().Err(err).Msg("simulated fleet stopped")
		return exitFailure
	}
	remotes := fleet.Remotes()
	for _, r := range remotes {
		for _, e := range r.Endpoints {
			log.Debug().Str("remote", r.ID).Str("node", e.Node).Str("url", e.URL).Msg("serving")
		}
	}
	log.Info().Int("remotes", len(remotes)).Str("config", path).Msg("simulated fleet running; interrupt to stop")
	fmt.Fprintf(stdout, "Simulated fleet: %d remotes. Run the daemon against it with:\n\n  taskfleet serve --config %s\n\n", len(remotes), path)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info().Msg("stopping the simulated fleet")
	return exitOK
}
