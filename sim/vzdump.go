package sim

import (
	"math/rand/v2"
	"strconv"
)

// A vzdump task is planned before it is stored: which guests it backs up,
// when each begins and how long it takes, how each ends, and so the
// task's duration and exit status. The plan is a pure function of the
// node's profile and the task's start and worker id, so the task log
// (tasklog.go) and the backup ground truth (backuptruth.go) recompute the
// very plan the task was generated from.
//
// How PVE runs a backup (pve-manager PVE/VZDump.pm, exec_backup and
// exec_backup_task; PVE/API2/VZDump.pm): one vzdump task per node; its
// worker id is the vmid when the node backs up exactly one guest, empty
// otherwise. The guests are backed up one after the other, each logged
// between "INFO: Starting Backup of VM <vmid> (<qemu|lxc>)" and either
// "INFO: Finished Backup of VM <vmid> (<hh:mm:ss>)" or "ERROR: Backup of
// VM <vmid> failed - <error>". A guest's failure does not stop the job;
// at the end the job logs "INFO: Backup job finished with errors" and
// dies with "job errors" (the task's status), or logs "Backup job
// finished successfully". A signal kills the guest being backed up with
// "interrupted by signal", which ends the job ("ERROR: Backup job failed
// - interrupted by signal"). A job-abort hook script that fails replaces
// the job's error with its own. Warnings ("WARN: ...") make the status
// "WARNINGS: n".

// Per-guest outcomes.
const (
	outOK      uint8 = iota // "Finished Backup of VM"
	outWarn                 // finished, with warnings
	outError                // "ERROR: Backup of VM ... failed - ..."
	outCut                  // the log ends while it runs (the node died): unknown
	outSkipped              // never started: the job ended before
)

// dumpGuest is one guest of a vzdump plan.
type dumpGuest struct {
	g          *guestSpec
	vmid       int
	lxc        bool
	begin, dur int64 // seconds after the task's start
	outcome    uint8
	warns      int
	err        string // outError
}

// dumpPlan is a vzdump task, planned.
type dumpPlan struct {
	storage string
	guests  []dumpGuest
	jobErr  string // the job's own failure ("interrupted by signal"), logged as "Backup job failed"
	hook    bool   // the job-abort hook failed: the status is its error
	status  uint16 // index into statuses
	dur     int64
	client  bool // started by StartTask: everything OK
}

// Storages the simulated nodes back up to.
const (
	storagePBS   = "pbs-backup" // a PBS datastore, as PVE storage
	storageLocal = "local"      // a directory: vzdump archives
)

// guestErrors are the per-guest failures of a backup; %d is the vmid.
var guestErrors = [...]string{
	"can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout",
	"VM %d qmp command 'backup' failed - got timeout",
	"job failed with err -5 - Input/output error",
	"backup write data failed: command error: write_data upload error: pipelined request failed: connection reset by peer",
}

// jobGuests returns the node's guests in the nightly job that starts at t.
func (p *profile) jobGuests(t int64) []*guestSpec {
	gs := p.pveGuests()
	var out []*guestSpec
	for i := range gs {
		if gs[i].backedUpBy(polJob, t) {
			out = append(out, &gs[i])
		}
	}
	return out
}

// dumpPlanFor returns the plan of a vzdump task of this node that starts
// at start with worker id id (a vmid, or "" for several guests).
func (p *profile) dumpPlanFor(start int64, id string) dumpPlan {
	if id == "" {
		return p.planDump(start, p.jobGuests(start), storagePBS)
	}
	g := p.guest(id)
	if g == nil {
		vmid, _ := strconv.Atoi(id)
		g = &guestSpec{vmid: vmid}
	}
	rng := rand.New(rand.NewPCG(p.seed, uint64(start)^0x57_0a_9e))
	storage := storagePBS
	if rng.IntN(3) == 0 {
		storage = storageLocal
	}
	return p.planDump(start, []*guestSpec{g}, storage)
}

// clientDumpPlan is the plan of a vzdump task StartTask started: all its
// guests (the worker id's, or the node's first three of the job) back up
// fine in turn, within the task's duration.
func (p *profile) clientDumpPlan(id string, dur int64) dumpPlan {
	var gs []*guestSpec
	if id != "" {
		g := p.guest(id)
		if g == nil {
			vmid, _ := strconv.Atoi(id)
			g = &guestSpec{vmid: vmid}
		}
		gs = append(gs, g)
	} else {
		all := p.pveGuests()
		for i := range all {
			if len(gs) < 3 && all[i].policy == polJob {
				gs = append(gs, &all[i])
			}
		}
	}
	pl := dumpPlan{storage: storageLocal, status: stOK, dur: dur, client: true}
	per := max((dur-1)/int64(max(len(gs), 1)), 1)
	at := int64(1)
	for _, g := range gs {
		if at+per > dur {
			break
		}
		pl.guests = append(pl.guests, dumpGuest{g: g, vmid: g.vmid, lxc: g.lxc, begin: at, dur: per - 1, outcome: outOK})
		at += per
	}
	return pl
}

// planDump draws the outcome of backing up guests in turn from start.
func (p *profile) planDump(start int64, guests []*guestSpec, storage string) dumpPlan {
	first := 0
	if len(guests) > 0 {
		first = guests[0].vmid
	}
	rng := rand.New(rand.NewPCG(p.seed^uint64(first)<<32, uint64(start)))
	pl := dumpPlan{storage: storage}
	// The job's fate: mostly it runs to its end.
	fate, at := rng.IntN(1000), -1
	if len(guests) > 0 {
		at = rng.IntN(len(guests))
	}
	const (
		fateSignal = 3 // of 1000: interrupted by signal while backing up guest at
		fateHook   = 6 // the job-abort hook fails at the end
		fateCut    = 8 // the node dies while backing up guest at
	)
	t := int64(1)
	warns := 0
	failed := false
	for i, g := range guests {
		dg := dumpGuest{g: g, vmid: g.vmid, lxc: g.lxc, begin: t, dur: duration(rng, 20, 900)}
		x := rng.IntN(1000)
		msg := guestErrors[rng.IntN(len(guestErrors))]
		switch {
		case fate < fateSignal && i == at:
			dg.outcome, dg.err = outError, "interrupted by signal"
			pl.jobErr = "interrupted by signal"
		case fate >= fateHook && fate < fateCut && i == at:
			dg.outcome = outCut
		case fate >= fateHook && fate < fateCut && i > at, fate < fateSignal && i > at:
			dg.outcome, dg.dur = outSkipped, 0
		case x < 6:
			dg.outcome = outError
			dg.err = msg
			if g.lxc && msg == guestErrors[0] {
				dg.err = "can't lock file '/run/lock/lxc/pve-config-%d.lock' - got timeout"
			}
			dg.err = sprintfVMID(dg.err, g.vmid)
			dg.dur = max(dg.dur/3, 2)
			failed = true
		case x < 16 && warns < maxWarnings:
			dg.outcome, dg.warns = outWarn, 1
			warns++
		}
		pl.guests = append(pl.guests, dg)
		if dg.outcome != outSkipped {
			t += dg.dur + 1 + rng.Int64N(3)
		}
	}
	pl.dur = max(t, 2)
	switch {
	case pl.jobErr != "":
		pl.status = errSignal
	case fate >= fateHook && fate < fateCut && at >= 0:
		pl.status = stUnknownPVE
		pl.dur = pl.guests[at].begin + max(pl.guests[at].dur/2, 1)
	case fate >= fateSignal && fate < fateHook && len(guests) >= 2:
		pl.hook, pl.status = true, errHook
	case failed:
		pl.status = errJob
	case warns > 0:
		pl.status = uint16(stWarn1 + warns - 1)
	default:
		pl.status = stOK
	}
	return pl
}

// sprintfVMID fills the %d of a guest error with the vmid.
func sprintfVMID(format string, vmid int) string {
	for i := 0; i+1 < len(format); i++ {
		if format[i] == '%' && format[i+1] == 'd' {
			return format[:i] + strconv.Itoa(vmid) + format[i+2:]
		}
	}
	return format
}

// dumpPlan returns the plan of r, a vzdump task of this node.
func (a *activity) dumpPlan(r *rec) dumpPlan {
	if r.seq >= pidStarted {
		return a.p.clientDumpPlan(a.ids[r.id], int64(r.dur))
	}
	return a.p.dumpPlanFor(int64(r.start), a.ids[r.id])
}
