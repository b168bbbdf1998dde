package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlagSet returns the flag set of a command whose usage shows synopsis
// (the arguments after "taskfleet NAME") and about (what it does).
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: taskfleet %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(about))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. When the command must end now it
// returns the exit code and true: exitOK for -h, exitUsage for a bad flag
// (the flag package has printed why and the usage).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	}
	return exitUsage, true
}

// usageError prints a usage problem of a command and returns exitUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "taskfleet %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(fs.Output(), "Run 'taskfleet %s -h' for its flags.\n", fs.Name())
	return exitUsage
}

// stringList is a flag that may be repeated and takes comma-separated
// values: --remote a --remote b,c.
type stringList []string

// String returns the values, comma separated.
func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set adds the comma-separated values of one occurrence.
func (l *stringList) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}
