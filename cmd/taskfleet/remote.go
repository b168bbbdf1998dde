package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/BurntSushi/toml"

	"github.com/taskfleet/taskfleet/config"
)

const remoteAbout = `Manage the remotes of a configuration file:

  remote add URL     connect to a PVE node or a PBS, show its certificate,
                     discover the cluster's nodes, check the token's
                     privileges and append a [[remote]] block
  remote list        the remotes of the file
  remote remove ID   remove a remote's [[remote]] block

The file is edited as text, so its comments stay; it is written only when
the result is a valid configuration (a temporary file renamed over it).`

// runRemote is the remote command.
func runRemote(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelpFlag(args[0]) || args[0] == "help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprintf(w, "Usage: taskfleet remote add|list|remove [flags]\n\n%s\n\nRun 'taskfleet remote add -h' for a sub-command's flags.\n", remoteAbout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "add":
		return runRemoteAdd(ctx, rest, stdout, stderr)
	case "list":
		return runRemoteList(rest, stdout, stderr)
	case "remove", "rm":
		return runRemoteRemove(rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "taskfleet remote: unknown sub-command %q: want add, list or remove\n", sub)
		return exitUsage
	}
}

const remoteListAbout = `List the remotes of a configuration file: id, type, endpoints and token.
Secret files are not read, so this works without the daemon's privileges.`

// runRemoteList is the remote list command.
func runRemoteList(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("remote list", "[flags]", remoteListAbout, stderr)
	path := fs.String("config", "taskfleet.toml", "configuration `file`")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	var raw struct {
		Remotes []struct {
			ID        any `toml:"id"`
			Type      any `toml:"type"`
			TokenID   any `toml:"token_id"`
			Endpoints []struct {
				URL         any `toml:"url"`
				Fingerprint any `toml:"fingerprint"`
			} `toml:"endpoints"`
		} `toml:"remote"`
	}
	data, err := os.ReadFile(*path)
	if err == nil {
		_, err = toml.Decode(string(data), &raw)
	}
	if err != nil {
		fmt.Fprintf(stderr, "taskfleet remote list: %v\n", err)
		return exitFailure
	}
	if len(raw.Remotes) == 0 {
		fmt.Fprintf(stdout, "no remotes in %s; add one with: taskfleet remote add --config %s https://HOST:8006 ...\n", *path, *path)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tENDPOINTS\tTOKEN\tFIRST ENDPOINT")
	for _, r := range raw.Remotes {
		first := "-"
		if len(r.Endpoints) > 0 {
			first = fmt.Sprint(r.Endpoints[0].URL)
			if r.Endpoints[0].Fingerprint == nil {
				first += " (not pinned)"
			}
		}
		fmt.Fprintf(tw, "%v\t%v\t%d\t%v\t%s\n", orDash(r.ID), orDash(r.Type), len(r.Endpoints), orDash(r.TokenID), first)
	}
	tw.Flush()
	return exitOK
}

// orDash is v, or "-" when it is not set.
func orDash(v any) any {
	if v == nil {
		return "-"
	}
	return v
}

const remoteRemoveAbout = `Remove the [[remote]] block with this id from the configuration file,
with the comment lines directly above it. The file is written only when the
result is valid (an [[api_token]] that names the remote must be changed
first). A running daemon drops the remote on its next reload (SIGHUP).`

// runRemoteRemove is the remote remove command.
func runRemoteRemove(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("remote remove", "[flags] ID", remoteRemoveAbout, stderr)
	path := fs.String("config", "taskfleet.toml", "configuration `file`")
	dryRun := fs.Bool("dry-run", false, "print the block that would be removed; change nothing")
	if code, done := parseFlags(fs, reorderFlags(fs, args)); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want one remote id, got %d arguments", fs.NArg())
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintf(stderr, "taskfleet remote remove: %v\n", err)
		return exitFailure
	}
	out, b, err := config.RemoveRemote(data, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "taskfleet remote remove: %s: %v\n", *path, err)
		return exitFailure
	}
	if problems := newProblems(*path, data, out, 0); len(problems) > 0 {
		fmt.Fprintf(stderr, "taskfleet remote remove: %s not changed: without remote %q the configuration would be invalid:\n", *path, fs.Arg(0))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return exitFailure
	}
	lines := strings.Split(string(data), "\n")
	if *dryRun {
		fmt.Fprintf(stdout, "would remove lines %d-%d of %s:\n\n%s\n", b.Start, b.End, *path, strings.Join(lines[b.Start-1:b.End], "\n"))
		return exitOK
	}
	if err := config.WriteFile(*path, out, 0o640); err != nil {
		fmt.Fprintf(stderr, "taskfleet remote remove: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "removed remote %q (lines %d-%d) from %s; a running daemon drops it on reload (SIGHUP)\n", fs.Arg(0), b.Start, b.End, *path)
	return exitOK
}

// newProblems returns the problems of the edited configuration after
// that the original did not have (so that an edit is refused only for
// what it breaks): those at or after line from (1-based; 0: any line),
// and those whose text the original's problems do not contain.
func newProblems(path string, before, after []byte, from int) []string {
	dir := filepath.Dir(path)
	old := map[string]bool{}
	var verr *config.ValidationError
	if _, err := config.Parse(before, path, dir); errors.As(err, &verr) {
		for _, p := range verr.Problems {
			p.Line = 0
			old[p.String()] = true
		}
	}
	_, err := config.Parse(after, path, dir)
	if err == nil {
		return nil
	}
	if !errors.As(err, &verr) {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range verr.Problems {
		q := p
		q.Line = 0
		if (from > 0 && p.Line >= from) || !old[q.String()] {
			out = append(out, p.String())
		}
	}
	return out
}

// stdin is where confirm reads the answer (a test's pseudo-terminal).
var stdin = os.Stdin

// confirm asks a yes/no question on the terminal; false when stdin is
// not a terminal.
func confirm(stdout io.Writer, question string) bool {
	if !isTerminal(stdin) {
		return false
	}
	fmt.Fprintf(stdout, "%s [y/N] ", question)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
