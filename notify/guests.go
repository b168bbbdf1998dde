package notify

import "time"

// GuestSource tells which guests have had no successful backup for a
// while: the per-guest backup overview (package backups) implements it.
type GuestSource interface {
	// StaleGuests returns the guests whose last successful backup is
	// older than olderThan at now, or that have none. It is called from
	// a notifier's actor every StaleEvery: it must answer from memory (a
	// snapshot), never wait for a remote. It is safe for concurrent use.
	StaleGuests(now time.Time, olderThan time.Duration) []StaleGuest
}

// StaleGuest is a guest without a recent successful backup.
type StaleGuest struct {
	Remote string
	Node   string // "" when unknown
	VMID   string // "100"; PBS: the backup id ("vm/100", "host/foo")
	Name   string // "" when unknown
	LastOK time.Time
}

// key identifies the guest in the delivery state.
func (g StaleGuest) key() string { return g.Remote + "/" + g.VMID }
