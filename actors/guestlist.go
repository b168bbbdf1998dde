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
//     last list, or less than a minute before it: the next full refresh
//     asks again, so the list is no staler than before (full refreshes
//     are hourly at the default refresh interval);
//   - the list is guestListMaxAge old: changes that run no task (a rename
//     through the configuration API, which answers synchronously) show
//     within that time.
//
// A quiet cluster then costs one guest list every 6 hours instead of one
// an hour. Changes that taskfleet sees no task for (a guest recovered on
// another node by HA fencing, a configuration file moved by hand) show
// within the maximum age too.

// guestListMaxAge is the age at which a full refresh fetches the guest
// list even though no task changed guests; guestListSlack allows for
// refreshes that start a little early against the one that fetched it.
const (
	guestListMaxAge = 6 * time.Hour
	guestListSlack  = time.Minute
)

// guestListLag is how long after a task ends the guest list may still
// show the guest as it was: /cluster/resources takes a guest's name and
// template flag from pvestatd's status data, renewed about every 10 s
// (PVE::API2Tools::extract_vm_stats). In seconds, as task times are.
const guestListLag = 60

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

// guestNews looks for ends of guest-changing tasks in the job's batch that
// its snapshot did not have (a full fetch lists again the finished tasks
// after a node's cutoff: no news). It returns the newest end known to
// the poller (j.guestEnd or a newer one here, counting only ends within
// guestListLag before now, the remote's clock: older ones cannot matter to
// a list asked for now or later) and whether the guest list may not show
// an end: with no list (listAt 0), when the batch has news; with a list,
// when the newest end is within guestListLag before listAt (the remote's
// clock when the list was asked for). The snapshot is asked only while
// the answer can still change (a backfill holds thousands of such tasks).
func (j *fetchJob) guestNews(tasks []task.Task, listAt, now int64) (newest int64, changed bool) {
	newest = j.guestEnd
	for i := range tasks {
		t := &tasks[i]
		if t.Running() || !guestChangingTypes[t.UPID.Type] {
			continue
		}
		recent := t.EndTime >= now-guestListLag && t.EndTime > newest
		if !recent && (listAt != 0 || changed) || j.knownEnded(t.UPID) {
			continue
		}
		if recent {
			newest = t.EndTime
		}
		changed = changed || listAt == 0
	}
	if listAt != 0 {
		changed = newest != 0 && newest >= listAt-guestListLag
	}
	return newest, changed
}

// knownEnded reports whether the job's snapshot has u as finished.
func (j *fetchJob) knownEnded(u task.UPID) bool {
	if j.snap == nil {
		return false
	}
	page := j.snap.Query(task.Filter{Remote: j.remote, Node: u.Node, Since: u.StartTime, Until: u.StartTime, TypeFilter: u.Type})
	for _, t := range page.Tasks {
		if t.UPID == u {
			return !t.Running()
		}
	}
	return false
}

// guestListState is what a poller knows about its cluster's guest list.
type guestListState struct {
	at    time.Time // when the poll that fetched the last list started; zero: none yet
	stale bool      // a guest-changing task ended that the list may not show
	end   int64     // newest end of a guest-changing task fetched (the remote's clock)
}

// due reports whether a refresh fetches the guest list: only a full one,
// and only when the list may have changed.
func (g *guestListState) due(full bool, now time.Time) bool {
	return full && (g.stale || g.at.IsZero() || now.Sub(g.at) >= guestListMaxAge-guestListSlack)
}

// finished records a poll: end and changed are its GuestsEnd and
// GuestsChanged; fetched says that it brought a guest list that was handed
// to the backup keeper, in the poll that started at started. A poll whose
// batch the writer refused counts too: the writer may have taken part of
// it, and then those ends are no news to the next poll.
func (g *guestListState) finished(end int64, changed, fetched bool, started time.Time) {
	g.end = max(g.end, end)
	if fetched {
		g.at, g.stale = started, changed
		return
	}
	g.stale = g.stale || changed
}
