package sim

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// GuestBackup is the backup state of one guest at a time, as a client
// that has watched the fleet since its creation can know it: from the
// task lists, the guest lists and the logs of multi-guest vzdump tasks.
// See BackupTruth.
type GuestBackup struct {
	Remote   string
	Node     string // PVE: the guest's node; PBS: the server's host name
	VMID     string // "100"; a PBS host backup: the host's name
	Type     string // PVE: "qemu" or "lxc"; PBS: the backup type, "vm", "ct" or "host"
	Name     string // PVE: the guest's name (the guest list omits it while the node is offline); PBS: ""
	Template bool   // PVE: a template (likewise)

	// The last backup attempt: the task that started last among those
	// that backed the guest up (finished by the time asked). Times are
	// the task's, as the remote lists it (start time of the UPID, end
	// time), not the guest's own within a multi-guest job. Zero when
	// the guest was never backed up.
	LastStart  time.Time
	LastEnd    time.Time
	LastStatus task.StatusClass // the guest's outcome (see BackupTruth)
	LastError  string           // why, when LastStatus is error: the guest's error, or the task's status
	LastUPID   task.UPID
	Storage    string // where the last attempt went: PVE storage id ("pbs-backup", "local"); PBS datastore

	// The last successful backup (status ok or warning): zero when none.
	LastOKStart time.Time
	LastOKEnd   time.Time
	LastOKUPID  task.UPID
}

// DatastoreJob is the last run of one PBS job on one datastore.
type DatastoreJob struct {
	Remote string
	Store  string // the (local) datastore
	Type   string // worker type: "verificationjob", "syncjob", "prunejob" or "garbage_collection"
	ID     string // the worker id: "store1:v-3fa2...", "pbs-offsite:offsite:store1::s-...", "store1"
	Start  time.Time
	End    time.Time
	Status string           // as listed: "OK", "WARNINGS: 2", an error
	Class  task.StatusClass // task.ClassifyStatus(Status)
	UPID   task.UPID
}

// pbsJobTypes are the worker types DatastoreJob reports.
var pbsJobTypes = []string{"verificationjob", "syncjob", "prunejob", "garbage_collection"}

// BackupTruth returns the backup state of every guest at time at (at
// most the fleet's current time): on each PVE cluster every guest of its
// current nodes (as GET /cluster/resources lists them, never backed up
// ones included), and on each PBS server every backup group (datastore,
// type and id) that has a backup task. Sorted by remote, then (PVE)
// vmid or (PBS) datastore, type and id.
//
// It is computed from the tasks the endpoints serve, restricted to what
// a client polling since the fleet's creation can have fetched: a task
// counts when it had finished by at and was still held by its node (in
// the index, see Config.IndexSize) at some moment since the creation.
// Running tasks do not count. Times are the remote's (as the task lists
// write them; see SetClockOffset).
//
// A guest's outcome comes from:
//   - a PVE vzdump task with the vmid as worker id: the task's status
//     class (task.ClassifyStatus, as PDM: "unexpected status" is an
//     error), LastError the status when not ok;
//   - a PVE vzdump task without worker id (several guests): the guest's
//     lines of the task log: "Finished Backup of VM" is ok, or warning
//     when a "WARN:" line belongs to the guest (from its "Starting
//     Backup of VM" line to the next guest's or the job's end);
//     "ERROR: Backup of VM <vmid> failed - <error>" is error (LastError
//     the error); a guest whose lines stop without either (the log ends)
//     is unknown; a guest the job never started is no attempt;
//   - a PBS backup task "<store>:<type>/<id>": the task's status class
//     (task.ClassifyStatus), LastError the status when not ok.
//
// Warnings count as success. StartTask's vzdump tasks count like the
// others (they back up the worker id's guest, or the node's first three
// job guests, all OK).
func (f *Fleet) BackupTruth(at time.Time) []GuestBackup {
	var out []GuestBackup
	f.eachNodeHistory(at, func(r *remote, n *node, a *activity, recs []rec) {
		if r.kind == task.PVE {
			out = append(out, a.pveBackups(r.id, n.name, recs)...)
		} else {
			out = append(out, a.pbsBackups(r.id, n.name, recs)...)
		}
	})
	slices.SortStableFunc(out, func(x, y GuestBackup) int {
		xi, _ := strconv.Atoi(x.VMID)
		yi, _ := strconv.Atoi(y.VMID)
		return cmp.Or(strings.Compare(x.Remote, y.Remote), strings.Compare(x.groupStore(), y.groupStore()),
			cmp.Compare(xi, yi), strings.Compare(x.Type, y.Type), strings.Compare(x.VMID, y.VMID))
	})
	return out
}

// JobTruth returns, for every PBS server, the last run of each of its
// verification, sync, prune and garbage collection jobs (one row per
// worker type and worker id) by time at, with the same rules as
// BackupTruth: finished tasks a client polling since the fleet's
// creation can have fetched. Sorted by remote, datastore, type and id.
func (f *Fleet) JobTruth(at time.Time) []DatastoreJob {
	var out []DatastoreJob
	f.eachNodeHistory(at, func(r *remote, n *node, a *activity, recs []rec) {
		if r.kind != task.PBS {
			return
		}
		last := map[[2]string]DatastoreJob{}
		for i := range recs {
			rp := &recs[i]
			typ := a.typeName(rp)
			if !slices.Contains(pbsJobTypes, typ) {
				continue
			}
			id := a.ids[rp.id]
			u := a.upid(rp)
			k := [2]string{typ, id}
			if old, ok := last[k]; ok && old.Start.Unix() > u.StartTime {
				continue
			}
			st := statuses[rp.status]
			last[k] = DatastoreJob{
				Remote: r.id, Store: jobDatastore(typ, id), Type: typ, ID: id,
				Start: time.Unix(u.StartTime, 0).UTC(), End: time.Unix(a.endStamp(rp), 0).UTC(),
				Status: st, Class: task.ClassifyStatus(st), UPID: u,
			}
		}
		for _, j := range last {
			out = append(out, j)
		}
	})
	slices.SortFunc(out, func(x, y DatastoreJob) int {
		return cmp.Or(strings.Compare(x.Remote, y.Remote), strings.Compare(x.Store, y.Store),
			strings.Compare(x.Type, y.Type), strings.Compare(x.ID, y.ID))
	})
	return out
}

// jobDatastore returns the local datastore of a PBS job's worker id, as
// jobStore (PBS's check_job_store) reads it.
func jobDatastore(typ, id string) string {
	if typ == "syncjob" {
		if m := syncJobID.FindStringSubmatch(id); m != nil {
			return m[3]
		}
	}
	store, _, _ := strings.Cut(id, ":") // store, store:ns, store:job
	return store
}

// eachNodeHistory calls fn for every current node of every remote, under
// the node's lock, with the finished tasks a client watching since the
// fleet's creation can know by time at, by start.
func (f *Fleet) eachNodeHistory(at time.Time, fn func(r *remote, n *node, a *activity, recs []rec)) {
	f.mu.RLock()
	ids := slices.Clone(f.ids)
	f.mu.RUnlock()
	now := f.now()
	t := min(at.Unix(), now)
	for _, id := range ids {
		r, _ := f.lookup(id, "")
		if r == nil {
			continue
		}
		for _, n := range f.nodesOf(r) {
			a := n.act
			a.mu.Lock()
			a.advance(now)
			fn(r, n, a, a.knowable(f.created, t))
			a.mu.Unlock()
		}
	}
}

// knowable returns the tasks that finished by t and were held at some
// moment since created: those that finished after created, and the
// index's share of those that finished before. By start; the caller
// holds mu and advanced to at least t.
func (a *activity) knowable(created, t int64) []rec {
	hist := a.history()
	var before []int // finished by created
	for i := range hist {
		if hist[i].end() <= created {
			before = append(before, i)
		}
	}
	// The index at creation: the last indexSize to finish, as settle
	// orders them (by end, then start).
	slices.SortStableFunc(before, func(x, y int) int {
		return cmp.Or(cmp.Compare(hist[x].end(), hist[y].end()), cmp.Compare(hist[x].start, hist[y].start))
	})
	dropped := map[int]bool{}
	for _, i := range before[:max(len(before)-a.indexSize, 0)] {
		dropped[i] = true
	}
	out := hist[:0:0]
	for i := range hist {
		if hist[i].end() <= t && !dropped[i] {
			out = append(out, hist[i])
		}
	}
	return out
}

// pveBackups returns the backup state of every guest of this PVE node
// from its known tasks recs; the caller holds mu.
func (a *activity) pveBackups(remoteID, nodeName string, recs []rec) []GuestBackup {
	gs := a.p.pveGuests()
	rows := make([]GuestBackup, len(gs))
	for i := range gs {
		rows[i] = GuestBackup{
			Remote: remoteID, Node: nodeName, VMID: strconv.Itoa(gs[i].vmid), Type: gs[i].kind(),
			Name: gs[i].name(), Template: gs[i].template,
		}
	}
	for i := range recs {
		rp := &recs[i]
		if a.typeName(rp) != "vzdump" {
			continue
		}
		u := a.upid(rp)
		end := time.Unix(a.endStamp(rp), 0).UTC()
		pl := a.dumpPlan(rp)
		for _, g := range pl.guests {
			cls, msg := task.StatusOK, ""
			switch {
			case u.ID != "":
				cls, msg = taskOutcome(statuses[rp.status]) // one guest: the task's status says
			case g.outcome == outSkipped:
				continue
			case g.outcome == outWarn:
				cls = task.StatusWarning
			case g.outcome == outError:
				cls, msg = task.StatusError, g.err
			case g.outcome == outCut:
				cls = task.StatusUnknown
			}
			gi := slices.IndexFunc(gs, func(s guestSpec) bool { return s.vmid == g.vmid })
			if gi < 0 {
				continue
			}
			rows[gi].note(u, end, cls, msg, pl.storage)
		}
	}
	return rows
}

// pbsBackups returns the backup state of every backup group of this PBS
// server that has a known backup task; the caller holds mu.
func (a *activity) pbsBackups(remoteID, nodeName string, recs []rec) []GuestBackup {
	byGroup := map[string]*GuestBackup{}
	for i := range recs {
		rp := &recs[i]
		if a.typeName(rp) != "backup" {
			continue
		}
		id := a.ids[rp.id]
		store, group, ok := strings.Cut(id, ":")
		typ, bid, ok2 := strings.Cut(group, "/")
		if !ok || !ok2 {
			continue
		}
		row := byGroup[id]
		if row == nil {
			row = &GuestBackup{Remote: remoteID, Node: nodeName, VMID: bid, Type: typ, Storage: store}
			byGroup[id] = row
		}
		cls, msg := taskOutcome(statuses[rp.status])
		row.note(a.upid(rp), time.Unix(a.endStamp(rp), 0).UTC(), cls, msg, store)
	}
	out := make([]GuestBackup, 0, len(byGroup))
	for _, row := range byGroup {
		out = append(out, *row)
	}
	return out
}

// taskOutcome is the outcome of a backup task that backed up one guest:
// its status class, and its status as the error when that is error or
// unknown.
func taskOutcome(status string) (task.StatusClass, string) {
	cls := task.ClassifyStatus(status)
	if cls == task.StatusError || cls == task.StatusUnknown {
		return cls, status
	}
	return cls, ""
}

// note records a backup attempt of the guest by task u, ended at end with
// class cls (msg: why, for an error) to storage: it is the last attempt
// unless one that started later is known (of two that started together,
// the later noted), and likewise the last success when ok or warning.
func (g *GuestBackup) note(u task.UPID, end time.Time, cls task.StatusClass, msg, storage string) {
	start := time.Unix(u.StartTime, 0).UTC()
	if g.LastUPID.IsZero() || !start.Before(g.LastStart) {
		g.LastStart, g.LastEnd, g.LastStatus, g.LastError, g.LastUPID, g.Storage = start, end, cls, msg, u, storage
	}
	if (cls == task.StatusOK || cls == task.StatusWarning) && (g.LastOKUPID.IsZero() || !start.Before(g.LastOKStart)) {
		g.LastOKStart, g.LastOKEnd, g.LastOKUPID = start, end, u
	}
}

// groupStore is the datastore of a PBS row, "" for a PVE guest.
func (g *GuestBackup) groupStore() string {
	if g.Type == "qemu" || g.Type == "lxc" {
		return ""
	}
	return g.Storage
}

// BackupStop is a guest whose backups stop: from At on, the nightly job
// leaves it out (see Config.BackupStopAfter).
type BackupStop struct {
	Remote, Node, VMID string
	At                 time.Time // fleet time: the first job without it starts after At
}

// BackupStops returns the guests whose backups stop, two per PVE cluster
// (on its node 1, while it exists), by remote and time.
func (f *Fleet) BackupStops() []BackupStop {
	f.mu.RLock()
	ids := slices.Clone(f.ids)
	f.mu.RUnlock()
	var out []BackupStop
	for _, id := range ids {
		r, _ := f.lookup(id, "")
		if r == nil || r.kind != task.PVE {
			continue
		}
		for _, n := range f.nodesOf(r) {
			gs := n.act.p.pveGuests()
			for i := range gs {
				if gs[i].stopAt != math.MaxInt64 {
					out = append(out, BackupStop{Remote: id, Node: n.name, VMID: strconv.Itoa(gs[i].vmid), At: time.Unix(gs[i].stopAt, 0).UTC()})
				}
			}
		}
	}
	slices.SortStableFunc(out, func(x, y BackupStop) int {
		return cmp.Or(strings.Compare(x.Remote, y.Remote), x.At.Compare(y.At))
	})
	return out
}
