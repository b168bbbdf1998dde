// Package metrics holds taskfleet's Prometheus collectors.
//
// Every series about a remote carries the label "remote" with the remote's
// configured id, so the number of series is bounded by the configuration;
// [Metrics.ForgetRemote] deletes a removed remote's series. Error kinds are
// a fixed set ([ErrorKinds]); anything else is counted as "other".
//
// All methods are safe for concurrent use and are no-ops on a nil
// *Metrics, so components can run without metrics in tests.
package metrics

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// namespace prefixes every metric name.
const namespace = "taskfleet"

// ErrorKinds are the values of the "kind" label of
// taskfleet_poll_errors_total: the remote client's error classes.
var ErrorKinds = []string{
	"unreachable",   // no connection to any endpoint
	"timeout",       // the request timeout expired
	"auth",          // 401/403: token missing, wrong or without privilege
	"node_offline",  // a cluster node answered 595/596 through the proxy
	"server",        // other 5xx answers
	"malformed",     // an answer that is not the expected JSON
	"too_large",     // an answer over the client's body limit
	"cert_mismatch", // the certificate does not match the pinned fingerprint
	"canceled",      // the request was canceled (shutdown, reload)
	"other",         // anything else
}

// RequestBuckets are the upper bounds, in seconds, of the request duration
// histogram: from a fast LAN answer up to PDM's 60 s timeout.
var RequestBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds the collectors. Create it with [New].
type Metrics struct {
	polls           *prometheus.CounterVec   // remote, result
	pollErrors      *prometheus.CounterVec   // remote, kind
	pollDuration    *prometheus.SummaryVec   // remote
	requestDuration *prometheus.HistogramVec // remote
	ticksSkipped    *prometheus.CounterVec   // remote
	pollerRestarts  *prometheus.CounterVec   // remote
	connectionsOpen *prometheus.GaugeVec     // remote
	connectionsNew  *prometheus.CounterVec   // remote
	remoteUp        *prometheus.GaugeVec     // remote

	tasksCached       prometheus.Gauge
	journalBytes      prometheus.Gauge
	cacheFiles        prometheus.Gauge
	rotations         prometheus.Counter
	corruptions       prometheus.Counter
	remotesConfigured prometheus.Gauge
	remotesBackfilled prometheus.Gauge
	snapshotAge       prometheus.GaugeFunc
	disk              diskMetrics
	edges             edges     // bounds.go
	outcomes          *outcomes // outcomes.go

	// snapshotAgeFunc is the source of taskfleet_snapshot_age_seconds;
	// nil until SetSnapshotAgeFunc is called.
	snapshotAgeFunc atomic.Pointer[func() (time.Duration, bool)]

	// lastCache holds the cumulative counters of the last ObserveCache,
	// from which the Prometheus counters are advanced.
	cacheMu   sync.Mutex
	lastCache CacheStats
}

// New creates the collectors and registers them on reg (unless reg is nil).
// It panics if reg already holds collectors of the same names, as
// [prometheus.Registerer.MustRegister] does.
func New(reg prometheus.Registerer) *Metrics {
	remote := []string{"remote"}
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "polls_total",
			Help: "Fetches of a remote's task lists, by result (ok or error).",
		}, []string{"remote", "result"}),
		pollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "poll_errors_total",
			Help: "Failed fetches of a remote, by error kind.",
		}, []string{"remote", "kind"}),
		pollDuration: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Namespace: namespace, Name: "poll_duration_seconds",
			Help: "Duration of a whole fetch of a remote (all its requests).",
		}, remote),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_duration_seconds",
			Help:    "Duration of HTTP requests to a remote.",
			Buckets: RequestBuckets,
		}, remote),
		ticksSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "ticks_skipped_total",
			Help: "Ticks coalesced because the remote's previous fetch was still running.",
		}, remote),
		pollerRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "poller_restarts_total",
			Help: "Restarts of a remote's poller after a panic.",
		}, remote),
		connectionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections_open",
			Help: "Open connections to a remote.",
		}, remote),
		connectionsNew: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "connections_new_total",
			Help: "New connections (TCP and TLS handshakes) to a remote.",
		}, remote),
		remoteUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "remote_up",
			Help: "1 if the remote's last fetch succeeded, 0 if it failed.",
		}, remote),
		tasksCached: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "tasks_cached",
			Help: "Tasks in the cache, running and finished.",
		}),
		journalBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "journal_size_bytes",
			Help: "Size of the cache journal not yet applied.",
		}),
		cacheFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "cache_files",
			Help: "Archive files of the cache on disk.",
		}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "rotations_total",
			Help: "Rotations of the cache's active file into an archive.",
		}),
		corruptions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_corruptions_total",
			Help: "Damaged cache files found (and repaired).",
		}),
		remotesConfigured: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "remotes_configured",
			Help: "Remotes in the configuration.",
		}),
		remotesBackfilled: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "remotes_backfilled",
			Help: "Remotes whose initial backfill has completed.",
		}),
	}
	m.disk = newDiskMetrics()
	m.edges = newEdges()
	m.outcomes = newOutcomes()
	m.snapshotAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "snapshot_age_seconds",
		Help: "Age of the cache snapshot that queries read; NaN until known.",
	}, m.readSnapshotAge)
	if reg != nil {
		reg.MustRegister(m.collectors()...)
	}
	return m
}

// collectors lists every collector of m, for registration.
func (m *Metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{
		m.polls, m.pollErrors, m.pollDuration, m.requestDuration, m.ticksSkipped,
		m.pollerRestarts, m.connectionsOpen, m.connectionsNew, m.remoteUp,
		m.tasksCached, m.journalBytes, m.cacheFiles, m.rotations, m.corruptions,
		m.remotesConfigured, m.remotesBackfilled, m.snapshotAge,
	}, slices.Concat(m.disk.collectors(), m.edges.collectors(), m.outcomes.collectors())...)
}

// readSnapshotAge is the GaugeFunc behind taskfleet_snapshot_age_seconds.
func (m *Metrics) readSnapshotAge() float64 {
	f := m.snapshotAgeFunc.Load()
	if f == nil {
		return math.NaN()
	}
	age, ok := (*f)()
	if !ok {
		return math.NaN()
	}
	return age.Seconds()
}

// normalizeKind maps kind to itself if it is one of ErrorKinds and to
// "other" otherwise, so a new error class cannot grow the label set.
func normalizeKind(kind string) string {
	if slices.Contains(ErrorKinds, kind) {
		return kind
	}
	return "other"
}
