package main

import (
	"io"
	"os"
	"strconv"

	"github.com/mattn/go-isatty"
)

// Terminal detection for colour and table widths. Colour is used only on
// a terminal, never in a pipe or a file, and never when NO_COLOR is set
// (https://no-color.org) or TERM is "dumb".

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	return f != nil && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// colorWanted reports whether output to w may be coloured.
func colorWanted(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return false
	}
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	return os.Getenv("TERM") != "dumb"
}

// terminalWidth returns the width of the terminal w writes to ($COLUMNS
// when set), or 0 when w is not a terminal: no limit.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return 0
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return fileWidth(f)
}
