package main

import (
	"time"

	"github.com/taskfleet/taskfleet/backups"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/notify"
)

// The backup overview (package backups) feeds two readers besides the API:
// the notifiers' "no successful backup for N hours" rules and the
// per-guest metrics. Both read the service's latest overview, an atomic
// load that never waits; before the cache has loaded there is none.

// overview returns the service's latest backup overview, or nil.
func (b *backend) overview() *backups.Overview {
	s := b.service()
	if s == nil {
		return nil
	}
	return s.Backups()
}

// backupGuests is the notifiers' notify.GuestSource.
type backupGuests struct{ b *backend }

// StaleGuests lists the current guests whose last successful backup is
// older than olderThan (or that have none).
func (g backupGuests) StaleGuests(now time.Time, olderThan time.Duration) []notify.StaleGuest {
	o := g.b.overview()
	if o == nil {
		return nil
	}
	var out []notify.StaleGuest
	for _, r := range o.Guests(backups.Query{OlderThan: olderThan}, now) {
		if !r.Current() {
			continue
		}
		id := r.VMID
		if r.IsPBS() {
			id = r.Type + "/" + r.VMID
		}
		var last time.Time
		if r.LastOK != 0 {
			last = time.Unix(r.LastOK, 0)
		}
		out = append(out, notify.StaleGuest{Remote: r.Remote, Node: r.Node, VMID: id, Name: r.Name, LastOK: last})
	}
	return out
}

// guestBackupRows gives the per-guest metrics ([metrics] per_guest) their
// rows at scrape time.
func (b *backend) guestBackupRows() []metrics.GuestBackup {
	o := b.overview()
	if o == nil {
		return nil
	}
	all := o.All()
	out := make([]metrics.GuestBackup, 0, len(all))
	for _, g := range all {
		if !g.Current() {
			continue
		}
		node := g.Node
		if g.IsPBS() {
			node = ""
		}
		out = append(out, metrics.GuestBackup{Remote: g.Remote, Node: node, VMID: g.VMID, GuestType: g.Type, LastOK: g.LastOK, LastAttempt: g.LastEnd})
	}
	return out
}
