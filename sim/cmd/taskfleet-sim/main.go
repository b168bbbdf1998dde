// Command taskfleet-sim runs a simulated fleet of Proxmox VE clusters and
// Proxmox Backup Servers on loopback addresses until interrupted, and
// writes a taskfleet configuration pointing at it:
//
//	go run ./sim/cmd/taskfleet-sim -out DIR
//
// writes DIR/taskfleet.toml and DIR/<remote>.secret for each remote.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/sim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "taskfleet-sim:", err)
		os.Exit(1)
	}
}

// options are the command line flags.
type options struct {
	out     string
	listen  string
	verbose bool
	cfg     sim.Config
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("taskfleet-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "out", "", "directory for taskfleet.toml and the token secret files (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8087", "listen address written into the daemon's configuration")
	fs.Int64Var(&o.cfg.Seed, "seed", 1, "seed of the simulated activity")
	fs.IntVar(&o.cfg.PVEClusters, "pve", 8, "number of PVE clusters")
	fs.IntVar(&o.cfg.NodesPerCluster, "nodes", sim.DefaultNodesPerCluster, "nodes per PVE cluster")
	fs.IntVar(&o.cfg.PBSServers, "pbs", 2, "number of PBS servers")
	fs.DurationVar(&o.cfg.History, "history", sim.DefaultHistory, "activity before the start")
	fs.Float64Var(&o.cfg.TaskRate, "rate", sim.DefaultTaskRate, "mean tasks per node and hour outside the nightly backup")
	fs.IntVar(&o.cfg.IndexSize, "index", sim.DefaultIndexSize, "finished tasks each node keeps")
	fs.BoolVar(&o.verbose, "v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.out == "" {
		return o, fmt.Errorf("-out DIR is required")
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	level := zerolog.InfoLevel
	if o.verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).Level(level).With().Timestamp().Logger()
	o.cfg.Logger = log

	fleet, err := sim.New(o.cfg)
	if err != nil {
		return err
	}
	if err := fleet.Start(); err != nil {
		return err
	}
	defer fleet.Close()
	path, err := fleet.WriteDaemonConfig(o.out, sim.DaemonOptions{Listen: o.listen})
	if err != nil {
		return err
	}
	for _, r := range fleet.Remotes() {
		for _, e := range r.Endpoints {
			log.Info().Str("remote", r.ID).Str("node", e.Node).Str("url", e.URL).Msg("serving")
		}
	}
	log.Info().Str("config", path).Int("remotes", len(fleet.Remotes())).Msg("fleet running; interrupt to stop")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info().Msg("stopping")
	return nil
}
