package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// logFlags are the logging flags every command takes.
type logFlags struct {
	format string // "json" or "console"
	level  string // "debug", "info", "warn" or "error"
}

// register adds --log-format (defaulting to format) and --log-level to fs.
func (l *logFlags) register(fs *flag.FlagSet, format string) {
	fs.StringVar(&l.format, "log-format", format, "log format: json (one JSON object a line) or console (for humans)")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

// logger returns the logger the flags ask for, writing to w: zerolog JSON
// lines or zerolog's console format (coloured only when w is a terminal
// and NO_COLOR is not set), with a timestamp. protoactor's own
// logs reach it through actors.LoggerFactory (warnings and errors only).
func (l *logFlags) logger(w io.Writer) (zerolog.Logger, error) {
	level, err := parseLevel(l.level)
	if err != nil {
		return zerolog.Nop(), err
	}
	var out io.Writer
	switch l.format {
	case "json":
		out = w
	case "console":
		// Colour only on a terminal: pipes and files get plain text.
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colorWanted(w)}
	default:
		return zerolog.Nop(), fmt.Errorf("invalid --log-format %q: want json or console", l.format)
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}

// parseLevel parses a --log-level value.
func parseLevel(s string) (zerolog.Level, error) {
	switch s {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info":
		return zerolog.InfoLevel, nil
	case "warn", "warning":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", s)
}
