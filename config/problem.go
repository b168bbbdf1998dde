package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file. It never contains
// a secret.
type Problem struct {
	File    string // the file name as given to Load or Parse
	Line    int    // 1-based line; 0 if unknown
	Remote  string // id of the remote concerned, if any
	Field   string // key path, relative to the remote if Remote is set, e.g. "endpoints[1].fingerprint"
	Message string
}

// String formats the problem as
// `taskfleet.toml:12: remote "pve-east": endpoints[1].fingerprint: want 32 hex bytes`.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Remote != "" {
		fmt.Fprintf(&b, "remote %q: ", p.Remote)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a configuration file, in
// the order of their lines (problems without a line last).
type ValidationError struct {
	Problems []Problem
}

// Error returns the problems, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects the problems of one file. Each problem is reported at
// a key path with array indexes ("remote[1].endpoints[0].url"); the path
// gives the line and, for a remote's keys, the remote id and the field.
type problems struct {
	file    string
	pos     positions
	ids     []string // remote ids by index, "" where the id is not usable
	secrets []string // every secret value seen, redacted from all problems
	list    []Problem

	reported map[string]bool // paths that have a problem
}

// remotePath matches a path below remote[i].
var remotePath = regexp.MustCompile(`^remote\[(\d+)\](?:\.(.+))?$`)

// add reports a problem at path, unless path already has one: the first
// problem of a field (a value of the wrong type) makes later ones (the
// field is missing) noise.
func (ps *problems) add(path, format string, args ...any) {
	if ps.reported[path] {
		return
	}
	if ps.reported == nil {
		ps.reported = map[string]bool{}
	}
	ps.reported[path] = true
	p := Problem{File: ps.file, Line: ps.pos.line(path), Field: path, Message: fmt.Sprintf(format, args...)}
	if m := remotePath.FindStringSubmatch(path); m != nil {
		i, _ := strconv.Atoi(m[1])
		if i < len(ps.ids) && ps.ids[i] != "" {
			p.Remote, p.Field = ps.ids[i], m[2]
		}
	}
	ps.list = append(ps.list, p)
}

// addSecret registers a secret value so that it is redacted from every
// problem. Values shorter than 8 bytes are not treated as secrets: they
// would redact parts of ordinary words ("short" in "shorter"), and no
// message echoes a value anyway; valid secrets have at least 16.
func (ps *problems) addSecret(s string) {
	if len(s) >= 8 {
		ps.secrets = append(ps.secrets, s)
	}
}

// result redacts the secrets, sorts the problems by line and returns them
// as a *ValidationError, or nil if there are none.
func (ps *problems) result() error {
	if len(ps.list) == 0 {
		return nil
	}
	out := make([]Problem, len(ps.list))
	for i, p := range ps.list {
		for _, s := range ps.secrets {
			p.Remote = strings.ReplaceAll(p.Remote, s, redacted)
			p.Field = strings.ReplaceAll(p.Field, s, redacted)
			p.Message = strings.ReplaceAll(p.Message, s, redacted)
		}
		out[i] = p
	}
	slices.SortStableFunc(out, func(a, b Problem) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
	return &ValidationError{Problems: out}
}
