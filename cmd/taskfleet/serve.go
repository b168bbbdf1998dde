package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/config"
)

const serveAbout = `Run the daemon: poll the remotes of the configuration, keep their tasks in
the cache and serve the HTTP API on server.listen.

SIGHUP re-reads the configuration (an invalid file is logged and the running
configuration stays); SIGINT and SIGTERM stop gracefully: the API first, then
the service (in-flight fetches cancelled, journal applied, files synced).
An invalid configuration exits with status 2 after logging every problem.`

// runServe is the serve command.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "--config FILE [flags]", serveAbout, stderr)
	path := fs.String("config", "taskfleet.toml", "configuration `file`")
	stopTimeout := fs.Duration("stop-timeout", defaultStopTimeout, "how long the service may take to stop (fetches cancelled, journal applied, files synced)")
	var lf logFlags
	lf.register(fs, "json")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	cfg, err := loadConfig(log, *path)
	if err != nil {
		return exitUsage
	}
	if err := checkCacheDir(cfg.Server.CacheDir); err != nil {
		logSettingError(log, *path, "server.cache_dir", err)
		return exitFailure
	}
	ln, err := listenAPI(cfg)
	if err != nil {
		logSettingError(log, *path, "server.listen", err)
		return exitFailure
	}
	loopback := loopbackCheck(ctx)(ln.Addr())
	at, err := setupTLS(cfg.Server, ln.Addr(), loopback)
	if err != nil {
		ln.Close()
		log.Error().Err(err).Msg("taskfleet not started")
		return exitUsage
	}
	d := newDaemon(*path, cfg, ln, log)
	d.stopTimeout = *stopTimeout
	d.setTLS(at, loopback, stdout)

	var g run.Group
	{ // Termination: SIGINT, SIGTERM (or ctx) end the group; see daemon.addTo for the stop order.
		g.Add(termination(ctx))
	}
	d.addTo(&g)
	return d.wait(&g)
}

// loadConfig loads the configuration file and logs every problem of an
// invalid one.
func loadConfig(log zerolog.Logger, path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	var verr *config.ValidationError
	switch {
	case errors.As(err, &verr):
		logProblems(log, verr)
		log.Error().Int("problems", len(verr.Problems)).Str("file", path).Msg("taskfleet not started: invalid configuration")
	case err != nil:
		log.Error().Err(err).Str("file", path).Msg("taskfleet not started")
	}
	return cfg, err
}

// logSettingError logs why serve cannot start with a setting, naming the
// configuration key and its line.
func logSettingError(log zerolog.Logger, path, key string, err error) {
	p := at(path, key, err)
	ev := log.Error().Err(err).Str("file", p.File).Str("field", key)
	if p.Line > 0 {
		ev = ev.Int("line", p.Line)
	}
	ev.Msg("taskfleet not started: " + p.String())
}

// checkCacheDir creates the cache directory if needed and checks that
// files can be created in it, so that a wrong path or permission stops
// the start with a clear error rather than a cache writer that cannot
// open its files.
func checkCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	return nil
}

// listenAPI binds the API's address. The configuration refuses a
// non-loopback address without an API token; the bound address is
// checked again, so that a name that resolves elsewhere cannot open the
// API either.
func listenAPI(cfg *config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := checkListen(cfg, ln.Addr()); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
