package main

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/notify"
)

// Shutdown bounds.
const (
	// httpGrace is how long in-flight API requests may take to finish once
	// the server stops accepting new ones; then their contexts are
	// cancelled and their connections closed.
	httpGrace = 10 * time.Second
	// defaultStopTimeout bounds the service's stop: cancelling fetches,
	// applying queued batches and the journal, syncing the files.
	defaultStopTimeout = time.Minute
)

// daemon is what serve and demo run: the taskfleet service, its HTTP API,
// reloading on SIGHUP and the backfill progress. addTo wires them into a
// run.Group; the caller adds the termination signal before and its own
// subsystems (the demo's simulated fleet) after.
type daemon struct {
	cfg         *config.Config
	listener    net.Listener // the API's, already bound
	log         zerolog.Logger
	stopTimeout time.Duration
	backend     *backend
	metrics     *metrics.Metrics
	handler     swapHandler
	// notifyMetrics count the notifiers' deliveries (daemon_notify.go).
	notifyMetrics *notify.Metrics
	// tls is the API's certificate; nil serves plain HTTP.
	tls *apiTLS

	// refreshAtStart asks every remote for a refresh as soon as the cache
	// is loaded instead of at the first tick (the demo).
	refreshAtStart bool
	// activityEvery, when positive, logs the number of cached tasks at
	// this interval once the backfill is complete (the demo).
	activityEvery time.Duration
	// started, when set, is called once the service answers queries.
	started func(*taskfleet.Service)

	stopErr error // the service's stop failed; read after the group ran
}

// newDaemon prepares a daemon for cfg, read from path, serving its API
// on ln: the metrics registry and the API handler. Nothing runs yet.
func newDaemon(path string, cfg *config.Config, ln net.Listener, log zerolog.Logger) *daemon {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &daemon{
		cfg:         cfg,
		listener:    ln,
		log:         log,
		stopTimeout: defaultStopTimeout,
		metrics:     metrics.New(reg),
		backend:     newBackend(path, cfg, ln.Addr(), log.With().Str("component", "reload").Logger()),
	}
	// The events hub outlives the service: the API subscribes to it, the
	// service's cache writer publishes to it; runService closes it last.
	d.backend.events = events.New(events.Options{Logger: log.With().Str("component", "events").Logger()})
	registerEventMetrics(reg, d.backend.events)
	d.notifyMetrics = notify.NewMetrics(reg)
	if cfg.Metrics.PerGuest {
		reg.MustRegister(metrics.NewGuestBackups(cfg.Metrics.MaxGuests, d.backend.guestBackupRows))
	}
	promHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	apiLog := log.With().Str("component", "api").Logger()
	edge := api.NewEdge(0) // shared by the handlers of every reload
	registerEdgeMetrics(reg, edge)
	newAPI := func(c *config.Config) http.Handler {
		return api.New(d.backend, api.Options{Tokens: apiTokens(c), Logger: apiLog, Metrics: promHandler, Edge: edge})
	}
	d.handler.set(newAPI(cfg))
	d.backend.onReload = func(c *config.Config) { d.handler.set(newAPI(c)) }
	d.backend.reloadCert = func() { d.reloadTLS(d.backend.log) }
	d.metrics.SetBackfill(0, len(cfg.Remotes))
	return d
}

// apiTokens converts the configured [[api_token]]s for the API.
func apiTokens(cfg *config.Config) []api.Token {
	out := make([]api.Token, 0, len(cfg.APITokens))
	for _, t := range cfg.APITokens {
		tok := api.Token{ID: t.ID, Secret: t.Secret.Reveal()}
		if !t.AllRemotes() {
			tok.Remotes = t.Remotes
		}
		out = append(out, tok)
	}
	return out
}

// addTo adds the daemon's subsystems to g. run.Group interrupts its actors
// in the order they were added and each interrupt below returns only once
// its subsystem has stopped, so this order is the stop order:
//
//  1. the HTTP API, first: no new request may reach the service while it
//     stops, and in-flight requests (a refresh with wait) finish against
//     a running service;
//  2. the reloader and 3. the backfill progress, which call the service;
//  4. the service last: it cancels in-flight fetches, applies the queued
//     batches and the journal and syncs the files, so nothing is torn.
func (d *daemon) addTo(g *run.Group) {
	{ // HTTP API, stopped first: no new request may reach the service
		// while it stops, and requests in flight finish against a running one.
		log := d.log.With().Str("component", "api").Logger()
		reqCtx, cancelRequests := context.WithCancel(context.Background())
		srv := &http.Server{
			Handler:     &d.handler,
			ErrorLog:    stdlog.New(log, "", 0),
			BaseContext: func(net.Listener) context.Context { return reqCtx },
		}
		api.ConfigureServer(srv) // timeouts and limits
		scheme := "http"
		if d.tls != nil {
			srv.TLSConfig = d.tls.config()
			scheme = "https"
		}
		// Event streams never go idle: closing the hub ends them, so that
		// Shutdown does not wait for them (the cache writer's later
		// publishes are dropped).
		srv.RegisterOnShutdown(d.backend.events.Close)
		g.Add(func() error {
			log.Info().Str("listen", d.listener.Addr().String()).Str("scheme", scheme).Int("remotes", len(d.cfg.Remotes)).
				Int("api_tokens", len(d.cfg.APITokens)).Str("cache_dir", d.cfg.Server.CacheDir).Msg("taskfleet starting: api listening")
			var err error
			if d.tls != nil {
				err = srv.ServeTLS(d.listener, "", "")
			} else {
				err = srv.Serve(d.listener)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve api: %w", err)
			}
			return nil
		}, func(error) {
			defer cancelRequests()
			log.Info().Msg("stopping api")
			ctx, cancel := context.WithTimeout(context.Background(), httpGrace)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				log.Warn().Err(err).Dur("grace_ms", httpGrace).Msg("api requests still running after the grace period: cancelled")
				cancelRequests()
				_ = srv.Close()
			}
			log.Info().Msg("api stopped")
		})
	}
	{ // Reload on SIGHUP, stopped before the service because a reload
		// calls it. Registered now: SIGHUP's default action ends the process.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		quit, done := make(chan struct{}), make(chan struct{})
		g.Add(func() error {
			defer close(done)
			for {
				select {
				case <-hup:
					d.reload()
				case <-quit:
					return nil
				}
			}
		}, func(error) {
			// Ignored rather than reset: a SIGHUP during the shutdown
			// (log rotation) must not kill the process mid-stop.
			signal.Ignore(syscall.SIGHUP)
			signal.Stop(hup)
			close(quit)
			<-done
			d.log.Info().Str("component", "reload").Msg("reloader stopped")
		})
	}
	{ // Backfill progress (logs and taskfleet_remotes_backfilled), stopped
		// before the service it reads.
		p := &progress{log: d.log.With().Str("component", "backfill").Logger(), metrics: d.metrics, activityEvery: d.activityEvery}
		quit, done := make(chan struct{}), make(chan struct{})
		g.Add(func() error {
			defer close(done)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					if s := d.backend.service(); s != nil {
						p.update(time.Now(), d.backend.Remotes(context.Background()), s.Snapshot())
					}
				case <-quit:
					return nil
				}
			}
		}, func(error) {
			close(quit)
			<-done
			p.log.Info().Msg("backfill progress stopped")
		})
	}
	// The notifiers (daemon_notify.go), stopped before the service they read.
	d.addNotify(g)
	{ // The service (actors and cache), stopped last, once nothing calls
		// it: its stop cancels in-flight fetches, applies the queued batches
		// and the journal and syncs the files, so no file is left torn. Its
		// execute starts it, waits for the interrupt and stops it; the
		// interrupt returns once it has stopped (or has given up starting).
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			return d.runService(ctx)
		}, func(error) {
			cancel()
			<-done
		})
	}
}

// runService starts the service, serves it until ctx ends and stops it,
// or returns the service's failure when its tree ends for good. A stop
// failure (the cache's final merge or sync) is kept in d.stopErr: the
// group has returned its first error by then.
func (d *daemon) runService(ctx context.Context) error {
	log := d.log.With().Str("component", "service").Logger()
	began := time.Now()
	defer d.backend.events.Close() // after the service stopped: it publishes until then
	s, err := taskfleet.Start(ctx, d.cfg, taskfleet.WithLogger(d.log), taskfleet.WithMetrics(d.metrics), taskfleet.WithEvents(d.backend.events))
	if err != nil {
		if ctx.Err() != nil {
			log.Info().Msg("stopped while loading the cache")
			return nil
		}
		return fmt.Errorf("start service: %w", err)
	}
	d.backend.setService(s)
	log.Info().Dur("duration_ms", time.Since(began)).Int("tasks", s.Snapshot().Len()).Msg("cache loaded; serving")
	if d.refreshAtStart {
		if _, err := s.Refresh(ctx, false); err != nil {
			log.Warn().Err(err).Msg("initial refresh not scheduled")
		}
	}
	if d.started != nil {
		d.started(s)
	}
	select {
	case <-ctx.Done():
	case <-s.Done():
		// The tree ended for good (its supervisor failed past the root
		// strategy's limit): end the group, so that serve exits non-zero
		// and systemd's Restart=on-failure starts it afresh.
		_ = s.Stop(context.Background()) // returns the same cause at once
		return fmt.Errorf("service failed: %w", s.Err())
	}
	log.Info().Msg("stopping service")
	began = time.Now()
	stopCtx, cancel := context.WithTimeout(context.Background(), d.stopTimeout)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		d.stopErr = fmt.Errorf("stop service: %w", err)
		log.Error().Err(err).Dur("duration_ms", time.Since(began)).Msg("service stop failed")
		return d.stopErr
	}
	log.Info().Dur("duration_ms", time.Since(began)).Msg("service stopped")
	return nil
}

// reload reloads the configuration on SIGHUP and logs the outcome; an
// invalid file is logged problem by problem and the daemon keeps running
// with its configuration.
func (d *daemon) reload() {
	log := d.log.With().Str("component", "reload").Logger()
	log.Info().Str("file", d.backend.path).Msg("SIGHUP: reloading the configuration")
	err := d.backend.Reload(context.Background())
	if err == nil {
		return
	}
	var verr *config.ValidationError
	if errors.As(err, &verr) {
		logProblems(log, verr)
		log.Error().Int("problems", len(verr.Problems)).Msg("reload rejected: keeping the running configuration")
		return
	}
	log.Error().Err(err).Msg("reload failed: keeping the running configuration")
}

// logProblems logs each problem of an invalid configuration.
func logProblems(log zerolog.Logger, verr *config.ValidationError) {
	for _, p := range verr.Problems {
		ev := log.Error().Str("file", p.File)
		if p.Line > 0 {
			ev = ev.Int("line", p.Line)
		}
		if p.Remote != "" {
			ev = ev.Str("remote", p.Remote)
		}
		if p.Field != "" {
			ev = ev.Str("field", p.Field)
		}
		ev.Msg("invalid configuration: " + p.Message)
	}
}

// wait runs g and turns its outcome into an exit code: a termination
// signal or the end of ctx is a clean stop, unless the service failed to
// stop.
func (d *daemon) wait(g *run.Group) int {
	err := g.Run()
	switch {
	case err == nil, errors.Is(err, run.ErrSignal), errors.Is(err, context.Canceled):
		if err != nil {
			d.log.Info().Str("reason", err.Error()).Msg("taskfleet stopped")
		}
	default:
		d.log.Error().Err(err).Msg("taskfleet failed")
		return exitFailure
	}
	if d.stopErr != nil {
		return exitFailure
	}
	return exitOK
}

// swapHandler is an http.Handler that a reload can replace (the API with
// new tokens) while requests are served.
type swapHandler struct {
	h atomic.Pointer[http.Handler]
}

// set makes h serve the following requests.
func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

// ServeHTTP serves r with the current handler.
func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// termination returns the run.Group actor that ends the group on SIGINT or
// SIGTERM, or when ctx ends.
func termination(ctx context.Context) (func() error, func(error)) {
	return run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM)
}
