package metrics

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/config"
)

// GuestBackup is the backup state of one guest, as the backup overview
// knows it: the source of the per-guest metrics.
type GuestBackup struct {
	Remote    string // the remote's id
	Node      string // the node the guest is on (PVE), or "" (PBS)
	VMID      string // "100"; for a PBS host backup the host's name
	GuestType string // "qemu" or "lxc" (PVE); "vm", "ct" or "host" (PBS)
	// LastOK is the Unix time the guest's last successful backup ended;
	// 0 when none is known (none in the cache's retention).
	LastOK int64
	// LastAttempt is the Unix time the guest's last finished backup
	// attempt ended, successful or not; 0 when none is known. It is
	// later than LastOK when the last attempt failed.
	LastAttempt int64
}

// guestKey is what identifies a guest's series.
type guestKey struct{ remote, node, vmid, typ string }

// GuestBackups is the collector of the per-guest backup metrics
// ([metrics] per_guest = true):
//
//   - taskfleet_guest_backup_last_success_timestamp_seconds
//   - taskfleet_guest_backup_last_attempt_timestamp_seconds
//
// both with the labels remote, node, vmid and guest_type, from the guests
// its function returns at each scrape. It exports at most max guests:
// when there are more, it keeps those whose last successful backup is the
// oldest (never first), which are the ones the "no successful backup"
// alert is about, and counts the others in
// taskfleet_guest_backups_omitted_total{reason="cap"}. Rows for a guest
// already exported (reason "duplicate": the one with the newer LastOK is
// kept) and rows with label values that are not UTF-8 (reason "invalid")
// are counted there too.
type GuestBackups struct {
	max       int
	f         func() []GuestBackup
	lastOK    *prometheus.Desc
	attempt   *prometheus.Desc
	omitted   *prometheus.CounterVec // reason
	omitCap   prometheus.Counter
	omitDup   prometheus.Counter
	omitWrong prometheus.Counter
}

// NewGuestBackups returns the per-guest collector over f, bounded by max
// guests (config.DefaultMaxGuests, the default of [metrics] max_guests,
// when max <= 0). f runs at each scrape and must
// be safe for concurrent use; the collector does not keep or change what
// it returns. Register it on the registry taskfleet's metrics use.
func NewGuestBackups(max int, f func() []GuestBackup) *GuestBackups {
	if max <= 0 {
		max = config.DefaultMaxGuests
	}
	labels := []string{"remote", "node", "vmid", "guest_type"}
	g := &GuestBackups{
		max: max,
		f:   f,
		lastOK: prometheus.NewDesc(namespace+"_guest_backup_last_success_timestamp_seconds",
			"Unix time the guest's last successful backup ended; 0: none in the cache's retention.", labels, nil),
		attempt: prometheus.NewDesc(namespace+"_guest_backup_last_attempt_timestamp_seconds",
			"Unix time the guest's last finished backup attempt ended, successful or not; 0: none.", labels, nil),
		omitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "guest_backups_omitted_total",
			Help: "Guest rows left out of the per-guest backup metrics, summed over scrapes: past max_guests (cap), a guest twice (duplicate), label values not UTF-8 (invalid).",
		}, []string{"reason"}),
	}
	g.omitCap = g.omitted.WithLabelValues("cap")
	g.omitDup = g.omitted.WithLabelValues("duplicate")
	g.omitWrong = g.omitted.WithLabelValues("invalid")
	return g
}

// Describe implements prometheus.Collector.
func (g *GuestBackups) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.lastOK
	ch <- g.attempt
	g.omitted.Describe(ch)
}

// Collect implements prometheus.Collector.
func (g *GuestBackups) Collect(ch chan<- prometheus.Metric) {
	defer g.omitted.Collect(ch)
	if g.f == nil {
		return
	}
	rows := g.f()
	// Work on the indexes: f's slice is not ours to reorder.
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := &rows[a], &rows[b]
		return cmp.Or(cmp.Compare(x.LastOK, y.LastOK), cmp.Compare(x.Remote, y.Remote),
			cmp.Compare(x.Node, y.Node), cmp.Compare(x.VMID, y.VMID), cmp.Compare(x.GuestType, y.GuestType),
			cmp.Compare(y.LastAttempt, x.LastAttempt))
	})
	// A guest twice: keep its row with the newest LastOK (the last in
	// this order), so a guest is not reported as never backed up because
	// of a stale row.
	last := make(map[guestKey]int, min(len(rows), g.max+1))
	for _, i := range order {
		r := &rows[i]
		last[guestKey{r.Remote, r.Node, r.VMID, r.GuestType}] = i
	}
	sent := 0
	for _, i := range order {
		r := &rows[i]
		if last[guestKey{r.Remote, r.Node, r.VMID, r.GuestType}] != i {
			g.omitDup.Inc()
			continue
		}
		if sent == g.max {
			g.omitCap.Inc()
			continue
		}
		ok, err1 := prometheus.NewConstMetric(g.lastOK, prometheus.GaugeValue, float64(r.LastOK), r.Remote, r.Node, r.VMID, r.GuestType)
		at, err2 := prometheus.NewConstMetric(g.attempt, prometheus.GaugeValue, float64(r.LastAttempt), r.Remote, r.Node, r.VMID, r.GuestType)
		if err1 != nil || err2 != nil {
			g.omitWrong.Inc()
			continue
		}
		ch <- ok
		ch <- at
		sent++
	}
}
