// Command taskfleet keeps the history of the tasks that run on a fleet of
// Proxmox VE clusters and Proxmox Backup Servers and serves it over a
// Proxmox-style HTTP API.
//
//	taskfleet serve --config taskfleet.toml   the daemon
//	taskfleet demo                            a simulated fleet and the daemon, in one process
//	taskfleet tasks list|stats|track|refresh  a client of a running daemon
//	taskfleet remotes                         the health of each remote
//	taskfleet version                         version, commit, Go version
//	taskfleet sim --out DIR                   a simulated fleet, with a configuration for serve
//	taskfleet remote add|list|remove          edit the remotes of a configuration file
//	taskfleet check-config FILE               validate a configuration file
//	taskfleet bench [--quick]                 measure taskfleet against a simulated fleet
//
// "taskfleet help COMMAND" (or "taskfleet COMMAND -h") describes a command's
// flags. The README and docs/ describe the daemon, its configuration and
// its API.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Exit codes of every command.
const (
	exitOK      = 0 // done, or stopped by a signal
	exitFailure = 1 // the command failed (a request, a start, a stop)
	exitUsage   = 2 // bad flags or arguments, or an invalid configuration
)

func main() {
	os.Exit(dispatch(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch dispatches to the sub-command named by args[0]. Long-running
// commands stop when ctx ends, as on SIGINT or SIGTERM.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "tasks":
		return runTasks(ctx, rest, stdout, stderr)
	case "sim":
		return runSim(ctx, rest, stdout, stderr)
	case "remote":
		return runRemote(ctx, rest, stdout, stderr)
	case "check-config":
		return runCheckConfig(ctx, rest, stdout, stderr)
	case "notify":
		return runNotify(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(rest, stdout, stderr)
	case "version", "--version", "-version":
		return printVersion(stdout)
	case "remotes":
		return runTasks(ctx, append([]string{"remotes"}, rest...), stdout, stderr)
	case "backups":
		return runTasks(ctx, append([]string{"backups"}, rest...), stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" && !isHelpFlag(rest[0]) {
			// "taskfleet help serve" is "taskfleet serve -h", on stdout.
			return dispatch(ctx, []string{rest[0], "-h"}, stdout, stdout)
		}
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "taskfleet: unknown command %q\n\n", cmd)
	usage(stderr)
	return exitUsage
}

// isHelpFlag reports whether s asks for help.
func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// usage lists the sub-commands.
func usage(w io.Writer) {
	fmt.Fprint(w, `taskfleet keeps the history of the tasks of Proxmox VE clusters and Proxmox
Backup Servers and serves it over a Proxmox-style HTTP API.

Usage:
  taskfleet COMMAND [flags]

Commands:
  serve         run the daemon (--config taskfleet.toml)
  demo          run a simulated fleet and the daemon in one process
  tasks         query a running daemon: tasks list|stats|track|untrack|refresh
  remotes       the health of each remote of a running daemon
  backups       per guest the last and the last good backup, failing and stale first
  sim           run a simulated fleet and write a configuration for serve
  remote        add a PVE cluster or a PBS to the configuration: remote add|list|remove
  check-config  validate a configuration file and what serve needs (--connect: the remotes)
  notify        notify test --target NAME: send a sample message to a [[notify]] target
  bench         measure taskfleet against a simulated fleet (docs/benchmarks.md)
  version       the version, the commit and the Go version (also --version)
  help          show this help, or "help COMMAND" for a command's flags

The daemon and client commands take --log-format json|console and
--log-level debug|info|warn|error. See README.md and docs/ for the configuration and
the API.
`)
}
