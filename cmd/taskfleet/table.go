package main

import (
	"io"
	"strings"
	"unicode/utf8"
)

// table prints the CLI's tables: columns padded to their widest cell
// (numbers right-aligned), shrunk to fit the terminal, and on a terminal
// coloured rows (warnings yellow, errors red) and states. Colour codes
// are added after padding, so they never break the alignment.
type table struct {
	headers []string
	right   []bool // per column: right-aligned (numbers)
	// flex is the column that is cut (with "…") when the table is wider
	// than the terminal; -1: none.
	flex  int
	rows  [][]string
	color []string // per row: an ANSI colour for the whole row, or ""
	// cellColor colours one cell by its text (states), or returns "".
	cellColor func(col int, text string) string
}

// ANSI colours.
const (
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// add adds a row with an optional colour.
func (t *table) add(color string, cells ...string) {
	t.rows = append(t.rows, cells)
	t.color = append(t.color, color)
}

// write prints the table to w: coloured when colour is true, at most
// width columns wide when width > 0.
func (t *table) write(w io.Writer, color bool, width int) error {
	widths := make([]int, len(t.headers))
	for i, h := range t.headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	if width > 0 && t.flex >= 0 {
		total := 2 * (len(widths) - 1)
		for _, n := range widths {
			total += n
		}
		if over := total - width; over > 0 {
			widths[t.flex] = max(widths[t.flex]-over, utf8.RuneCountInString(t.headers[t.flex]), 8)
		}
	}
	var b strings.Builder
	line := func(cells []string, rowColor string, header bool) {
		if header && color {
			b.WriteString(ansiBold)
		}
		if rowColor != "" && color {
			b.WriteString(rowColor)
		}
		for i, c := range cells {
			c = cut(c, widths[i])
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			cell := c
			if color && !header && rowColor == "" && t.cellColor != nil {
				if cc := t.cellColor(i, c); cc != "" {
					cell = cc + c + ansiReset
				}
			}
			switch {
			case i < len(t.right) && t.right[i]:
				b.WriteString(pad + cell)
			case i == len(cells)-1:
				b.WriteString(cell) // no trailing blanks
			default:
				b.WriteString(cell + pad)
			}
			if i < len(cells)-1 {
				b.WriteString("  ")
			}
		}
		if (header || rowColor != "") && color {
			b.WriteString(ansiReset)
		}
		b.WriteString("\n")
	}
	line(t.headers, "", true)
	for i, r := range t.rows {
		line(r, t.color[i], false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cut shortens s to n runes, marking the cut with "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// statusColor is the colour of a finished task's row: yellow for
// warnings, red for errors, none for OK and running tasks.
func statusColor(status string, running bool) string {
	switch {
	case running || status == "OK":
		return ""
	case strings.HasPrefix(status, "WARNINGS"):
		return ansiYellow
	}
	return ansiRed
}

// stateColor is the colour of a remote's state.
func stateColor(state string) string {
	switch state {
	case "up":
		return ansiGreen
	case "degraded", "starting":
		return ansiYellow
	case "down", "crashing":
		return ansiRed
	}
	return ""
}
