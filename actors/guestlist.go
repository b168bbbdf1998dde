package actors

import (
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// When a PVE cluster's guest list is fetched.
//
// The backup overview needs each cluster's guests (GET
// /cluster/resources?type=vm: the largest answer of a refresh, about 330
// bytes per guest). Guests come and go, move and turn into templates
// through worker tasks, which taskfleet fetches anyway; so a full refresh
// asks for the list only when it may have changed:
//
//   - the poller has no list yet (it started, or every attempt failed);
//   - a task that changes guests (guestChangingTypes) ended since the
//     last list: the next full refresh asks again, so the list is no
//     staler than before (full refreshes are hourly at the default
//     refresh interval);
//   - the list is guestListMaxAge old: changes that run no task (a rename
//     through the configuration API, which answers synchronously) show
//     within that time.
//
// A quiet cluster then costs one guest list every 6 hours instead of one
// an hour.

// guestListMaxAge is the age at which a full refresh fetches the guest
// list even though no task changed guests.
const guestListMaxAge = 6 * time.Hour

// guestChangingTypes are the PVE worker types that add, remove, move,
// rename or convert guests (../shared/fixtures/proxmox/task-types).
var guestChangingTypes = map[string]bool{
	"qmcreate": true, "vzcreate": true,
	"qmclone": true, "vzclone": true,
	"qmrestore": true, "vzrestore": true,
	"qmdestroy": true, "vzdestroy": true,
	"qmigrate": true, "vzmigrate": true, "hamigrate": true, "migrateall": true, "bulk-migrate": true,
	"qmtemplate": true, "vztemplate": true,
	"qmconfig": true, "qmrollback": true, "vzrollback": true,
}

// guestListState is what a poller knows about its cluster's guest list.
type guestListState struct {
	at    time.Time // when the last list was fetched and handed on; zero: none yet
	stale bool      // a guest-changing task ended since
	// ends is the newest end of a guest-changing task seen, per node: a
	// full fetch lists again the finished tasks that started after the
	// node's cutoff (held at its oldest running task), and those are no
	// news. One entry per node that ever ran such a task.
	ends map[string]int64
}

// due reports whether a refresh fetches the guest list: only a full one,
// and only when the list may have changed.
func (g *guestListState) due(full bool, now time.Time) bool {
	return full && (g.stale || g.at.IsZero() || now.Sub(g.at) >= guestListMaxAge)
}

// applied records a fetch whose batch was applied: fetched says that it
// brought a guest list that was handed to the backup keeper. A list is
// fetched after the fetch's task lists, so it shows the effect of every
// task in the batch that had ended; a task still running counts when its
// end is fetched.
func (g *guestListState) applied(tasks []task.Task, fetched bool, now time.Time) {
	ended := false
	for i := range tasks {
		t := &tasks[i]
		if t.Running() || !guestChangingTypes[t.UPID.Type] || t.EndTime <= g.ends[t.UPID.Node] {
			continue
		}
		if g.ends == nil {
			g.ends = map[string]int64{}
		}
		g.ends[t.UPID.Node], ended = t.EndTime, true
	}
	if fetched {
		g.at, g.stale = now, false
		return
	}
	g.stale = g.stale || ended
}
