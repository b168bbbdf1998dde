package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/taskfleet/taskfleet/config"
)

const checkConfigAbout = `Validate a configuration file as serve would load it (secret files and CA
files included). Every problem is printed, one a line with the file, the line,
the remote and the field, and the exit status is 1; a valid file prints
"ok: N remotes" and exits 0. Secrets are never printed.`

// runCheckConfig is the check-config command.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", "[flags] FILE", checkConfigAbout, stderr)
	var lf logFlags
	lf.register(fs, "json")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want one configuration file, got %d arguments", fs.NArg())
	}
	if _, err := lf.logger(stderr); err != nil {
		return usageError(fs, "%v", err)
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	var verr *config.ValidationError
	switch {
	case errors.As(err, &verr):
		for _, p := range verr.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		return exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "taskfleet check-config: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "ok: %d remotes\n", len(cfg.Remotes))
	return exitOK
}
