package actors

import (
	"fmt"

	"github.com/taskfleet/taskfleet/config"
)

// How each [polling] key applies on a reload (docs/operations.md):
//
//   - tick: the ticker restarts with the new interval, every poller restarts
//     (its backoff starts at one tick);
//   - refresh_interval: the supervisor schedules with it from the next tick;
//   - max_connections: a new global budget, every poller restarts with it
//     (requests in flight finish under the old one);
//   - max_connections_per_remote: it is the default of remote.max_connections,
//     so remotes that use the default are changed and restart;
//   - request_timeout: every poller restarts with a client that uses it;
//   - retention_days: refused while running (the cache's archive layout is
//     built for it when the cache opens); it needs a restart.

// PollingChanges returns the [polling] keys whose values differ between
// old and cfg, in file order ("tick", "refresh_interval", ...).
func PollingChanges(old, cfg config.Polling) []string {
	var keys []string
	add := func(changed bool, key string) {
		if changed {
			keys = append(keys, key)
		}
	}
	add(old.Tick != cfg.Tick, "tick")
	add(old.RefreshInterval != cfg.RefreshInterval, "refresh_interval")
	add(old.MaxConnections != cfg.MaxConnections, "max_connections")
	add(old.MaxConnectionsPerRemote != cfg.MaxConnectionsPerRemote, "max_connections_per_remote")
	add(old.RequestTimeout != cfg.RequestTimeout, "request_timeout")
	add(old.RetentionDays != cfg.RetentionDays, "retention_days")
	return keys
}

// checkReload refuses a configuration that cannot apply while running,
// naming the key.
func checkReload(old, cfg *config.Config) error {
	if old.Polling.RetentionDays != cfg.Polling.RetentionDays {
		return fmt.Errorf("polling.retention_days changed from %d to %d: it cannot change while taskfleet runs (the cache's archive files are laid out for it when it opens); restart taskfleet to apply it",
			old.Polling.RetentionDays, cfg.Polling.RetentionDays)
	}
	return nil
}

// pollersAffected reports whether a [polling] change needs every poller
// restarted (their client, budget or backoff depend on it).
func pollersAffected(old, cfg config.Polling) bool {
	return old.Tick != cfg.Tick || old.RequestTimeout != cfg.RequestTimeout || old.MaxConnections != cfg.MaxConnections
}
