package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/notify"
)

const notifyAbout = `Send notifications of the [[notify]] targets by hand.

  taskfleet notify test --target NAME [--config FILE]

sends a sample message (a failed backup and a guest without a recent
backup, marked as a test) to the target NAME, through its webhook or SMTP
server, and says whether it was delivered. Secrets are never printed.`

// runNotify is the notify command.
func runNotify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelpFlag(args[0]) || args[0] == "help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprintf(w, "Usage: taskfleet notify test --target NAME [flags]\n\n%s\n\nRun 'taskfleet notify test -h' for its flags.\n", notifyAbout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "test":
		return runNotifyTest(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "taskfleet notify: unknown sub-command %q: want test\n", sub)
		return exitUsage
	}
}

// runNotifyTest is the notify test command.
func runNotifyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("notify test", "--target NAME [flags]", notifyAbout, stderr)
	path := fs.String("config", "taskfleet.toml", "configuration `file`")
	target := fs.String("target", "", "`name` of the [[notify]] target")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	if *target == "" {
		return usageError(fs, "--target is required")
	}
	cfg, err := config.Load(*path)
	var verr *config.ValidationError
	switch {
	case errors.As(err, &verr):
		for _, p := range verr.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		return exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "taskfleet notify test: %v\n", err)
		return exitFailure
	}
	var names []string
	for i := range cfg.Notify {
		n := &cfg.Notify[i]
		if n.Name != *target {
			names = append(names, n.Name)
			continue
		}
		if err := notify.SendTest(ctx, n, nil); err != nil {
			fmt.Fprintf(stderr, "taskfleet notify test: target %s: %v\n", n.Name, err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "ok: sample message delivered to %s (%s)\n", n.Name, n.Kind)
		return exitOK
	}
	known := "none is configured"
	if len(names) > 0 {
		known = "configured: " + strings.Join(names, ", ")
	}
	fmt.Fprintf(stderr, "taskfleet notify test: %s has no [[notify]] target %q (%s)\n", *path, *target, known)
	return exitFailure
}
