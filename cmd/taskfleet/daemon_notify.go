package main

import (
	"time"

	"github.com/oklog/run"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/notify"
)

// addNotify adds the notifiers ([[notify]]) to g: they start once the
// cache is loaded (they read its snapshot for what finished while
// taskfleet was down), are restarted with the new targets when a reload
// changes [[notify]] (the delivery state on disk carries over), and stop
// before the service, whose hub and snapshot they read. A delivery in
// flight is cancelled and sent again at the next start.
func (d *daemon) addNotify(g *run.Group) {
	log := d.log.With().Str("component", "notify").Logger()
	reloaded := make(chan *config.Config, 1)
	prev := d.backend.onReload
	d.backend.onReload = func(c *config.Config) {
		prev(c)
		select { // keep only the newest
		case <-reloaded:
		default:
		}
		reloaded <- c
	}
	quit, done := make(chan struct{}), make(chan struct{})
	g.Add(func() error {
		defer close(done)
		wait := time.NewTicker(100 * time.Millisecond) // until the cache is loaded
		defer wait.Stop()
		for d.backend.service() == nil {
			select {
			case <-wait.C:
			case <-quit:
				return nil
			}
		}
		cfg := d.cfg
		var ns *notify.Notifiers
		start := func() {
			if len(cfg.Notify) == 0 {
				return
			}
			var err error
			ns, err = notify.Start(notify.Options{
				Targets:    cfg.Notify,
				CacheDir:   cfg.Server.CacheDir,
				Retention:  time.Duration(cfg.Polling.RetentionDays) * 24 * time.Hour,
				Hub:        d.backend.events,
				Snapshot:   func() *cache.Snapshot { return d.backend.service().Snapshot() },
				StaleEvery: staleEvery(cfg.Polling.RefreshInterval),
				Logger:     d.log,
				Metrics:    d.notifyMetrics,
				Guests:     backupGuests{d.backend},
			})
			if err != nil {
				log.Error().Err(err).Msg("notifiers not started")
				ns = nil
				return
			}
			log.Info().Int("targets", len(cfg.Notify)).Msg("notifiers started")
		}
		stop := func() {
			if ns == nil {
				return
			}
			if err := ns.Stop(); err != nil {
				log.Warn().Err(err).Msg("notifiers stopped with an error")
			}
			ns = nil
		}
		start()
		for {
			select {
			case c := <-reloaded:
				if !config.NotifyEqual(c.Notify, cfg.Notify) || c.Server.CacheDir != cfg.Server.CacheDir {
					stop()
					forgetRemoved(d.notifyMetrics, cfg.Notify, c.Notify)
					cfg = c
					start()
				}
				cfg = c
			case <-quit:
				stop()
				log.Info().Msg("notifiers stopped")
				return nil
			}
		}
	}, func(error) {
		close(quit)
		<-done
	})
}

// forgetRemoved deletes the metric series of the targets of old that new
// does not have.
func forgetRemoved(m *notify.Metrics, old, new []config.Notify) {
	keep := map[string]bool{}
	for _, n := range new {
		keep[n.Name] = true
	}
	for _, n := range old {
		if !keep[n.Name] {
			m.Forget(n.Name)
		}
	}
}

// staleEvery is how often the notifiers check their stale-guest rules: a
// guest crosses a rule's threshold with time, not with a refresh, so at
// least once a minute (a check reads the overview from memory).
func staleEvery(refresh time.Duration) time.Duration {
	return min(refresh, time.Minute)
}
