// Package synth generates synthetic task histories of a fleet of Proxmox VE
// clusters and Proxmox Backup Servers, with a realistic mix of worker
// types, users and exit statuses, for benchmarks and load tests of the task
// cache and the daemon.
package synth

import (
	"fmt"
	"math/rand"
	"slices"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// End is the end of every generated history: tasks start in
// [End - days, End). It is a midnight (UTC), so days of history fill whole
// daily archive periods.
var End = time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)

type weighted[T any] struct {
	w int
	v T
}

func pick[T any](rng *rand.Rand, items []weighted[T], total int) T {
	n := rng.Intn(total)
	for _, it := range items {
		if n < it.w {
			return it.v
		}
		n -= it.w
	}
	return items[len(items)-1].v
}

func sum[T any](items []weighted[T]) int {
	n := 0
	for _, it := range items {
		n += it.w
	}
	return n
}

// idKind says what a worker type's id looks like.
type idKind uint8

const (
	idNone idKind = iota
	idVM
	idVMOrNone
	idStore
	idStoreGuest
	idJob
)

type typ struct {
	name string
	id   idKind
	dur  int // typical duration, seconds
}

var pveTypes = []weighted[typ]{
	{35, typ{"vzdump", idVMOrNone, 600}},
	{8, typ{"qmstart", idVM, 5}},
	{5, typ{"qmstop", idVM, 5}},
	{5, typ{"qmshutdown", idVM, 30}},
	{2, typ{"qmreboot", idVM, 40}},
	{3, typ{"qmigrate", idVM, 300}},
	{3, typ{"vzstart", idVM, 3}},
	{2, typ{"vzstop", idVM, 3}},
	{6, typ{"qmsnapshot", idVM, 20}},
	{5, typ{"qmdelsnapshot", idVM, 10}},
	{1, typ{"qmclone", idVM, 120}},
	{1, typ{"qmcreate", idVM, 5}},
	{1, typ{"qmrestore", idVM, 900}},
	{1, typ{"vzcreate", idVM, 30}},
	{1, typ{"imgdel", idVM, 2}},
	{4, typ{"aptupdate", idNone, 30}},
	{6, typ{"vncproxy", idVM, 900}},
	{1, typ{"spiceproxy", idVM, 900}},
	{1, typ{"srvreload", idNone, 2}},
	{1, typ{"startall", idNone, 60}},
	{1, typ{"hamigrate", idVM, 120}},
	{1, typ{"download", idNone, 60}},
}

var pbsTypes = []weighted[typ]{
	{40, typ{"backup", idStoreGuest, 300}},
	{15, typ{"reader", idStoreGuest, 120}},
	{8, typ{"verificationjob", idJob, 1800}},
	{2, typ{"verify", idStore, 3600}},
	{4, typ{"garbage_collection", idStore, 1200}},
	{6, typ{"prunejob", idJob, 60}},
	{3, typ{"prune", idStoreGuest, 5}},
	{8, typ{"syncjob", idJob, 900}},
	{1, typ{"tape-backup-job", idJob, 3600}},
	{4, typ{"logrotate", idNone, 5}},
	{2, typ{"aptupdate", idNone, 30}},
}

var errorTemplates = []string{
	"job errors",
	"unable to acquire lock on snapshot directory",
	"VM %d qmp command 'query-backup' failed - got timeout",
	"command 'zfs snapshot rpool/data/vm-%d-disk-0@vzdump' failed: got timeout",
	"migration aborted",
	"can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout",
	"connection error: not connected",
	"interrupted by signal",
	"verification failed - please check the log for details",
	"backup write data failed: command error: write_data upload error: pipelined request failed: No space left on device",
}

// Synthetic returns n finished and running tasks of a fleet of remotes
// (about 80% Proxmox VE clusters of 1 to 8 nodes, 20% Proxmox Backup
// Servers) started uniformly over the days before End, sorted by start time
// (oldest first). Tasks still running at End have no end time. The mix:
// vzdump and PBS backups dominate; about 93% end "OK", 3% with warnings,
// 3.5% with an error, 0.5% unknown; root@pam and a few tokens start most
// tasks, a long tail of users the rest. The same arguments give the same
// tasks.
func Synthetic(n, remotes, days int, seed int64) []task.Task {
	rng := rand.New(rand.NewSource(seed))
	if remotes < 1 {
		remotes = 1
	}
	type remote struct {
		id    string
		kind  task.Kind
		nodes []string
		pid   []uint32
		tid   uint64
	}
	fleet := make([]remote, remotes)
	for i := range fleet {
		r := &fleet[i]
		if i%5 == 4 {
			r.id, r.kind = fmt.Sprintf("pbs-%04d", i), task.PBS
			r.nodes = []string{fmt.Sprintf("backup%d", rng.Intn(4)+1)}
		} else {
			r.id, r.kind = fmt.Sprintf("pve-%04d", i), task.PVE
			for k := range rng.Intn(8) + 1 {
				r.nodes = append(r.nodes, fmt.Sprintf("pve%d", k+1))
			}
		}
		r.pid = make([]uint32, len(r.nodes))
		for k := range r.pid {
			r.pid[k] = uint32(rng.Intn(1 << 20))
		}
	}
	// 70% of the tasks come from root and a few tokens, 30% from a long
	// tail of users.
	head := []weighted[string]{{45, "root@pam"}, {10, "root@pam!pdm"}, {10, "svc-backup@pve!ci"}, {5, "admin@pve"}}
	tail := make([]string, 300)
	for i := range tail {
		tail[i] = fmt.Sprintf("user%03d@pve", i)
	}
	headTotal, pveTotal, pbsTotal := sum(head), sum(pveTypes), sum(pbsTypes)
	end := End.Unix()
	span := int64(days) * 86400
	tasks := make([]task.Task, n)
	for i := range tasks {
		r := &fleet[rng.Intn(len(fleet))]
		k := rng.Intn(len(r.nodes))
		r.pid[k] += uint32(rng.Intn(50) + 1)
		start := end - 1 - rng.Int63n(max(span, 1))
		var ty typ
		if r.kind == task.PBS {
			ty = pick(rng, pbsTypes, pbsTotal)
		} else {
			ty = pick(rng, pveTypes, pveTotal)
		}
		user := tail[rng.Intn(len(tail))]
		if rng.Intn(100) < 70 {
			user = pick(rng, head, headTotal)
		}
		vmid := 100 + rng.Intn(900)
		u := task.UPID{
			Kind:      r.kind,
			Node:      r.nodes[k],
			PID:       r.pid[k],
			PStart:    uint64(rng.Int63n(1 << 34)),
			StartTime: start,
			Type:      ty.name,
			ID:        workerID(rng, ty.id, vmid),
			User:      user,
		}
		if r.kind == task.PBS {
			r.tid++
			u.TaskID = r.tid
		}
		t := task.Task{Remote: r.id, UPID: u}
		dur := int64(1 + rng.Intn(2*ty.dur))
		if start+dur < end {
			t.EndTime = start + dur
			t.Status = status(rng, vmid)
		}
		tasks[i] = t
	}
	slices.SortStableFunc(tasks, func(a, b task.Task) int {
		switch {
		case a.UPID.StartTime < b.UPID.StartTime:
			return -1
		case a.UPID.StartTime > b.UPID.StartTime:
			return 1
		}
		return 0
	})
	return tasks
}

func workerID(rng *rand.Rand, k idKind, vmid int) string {
	switch k {
	case idVM:
		return fmt.Sprint(vmid)
	case idVMOrNone:
		if rng.Intn(4) == 0 {
			return ""
		}
		return fmt.Sprint(vmid)
	case idStore:
		return fmt.Sprintf("store%d", rng.Intn(3)+1)
	case idStoreGuest:
		kind := "vm"
		if rng.Intn(3) == 0 {
			kind = "ct"
		}
		return fmt.Sprintf("store%d:%s/%d", rng.Intn(3)+1, kind, vmid)
	case idJob:
		return fmt.Sprintf("store%d:job-%02d", rng.Intn(3)+1, rng.Intn(20))
	}
	return ""
}

func status(rng *rand.Rand, vmid int) string {
	n := rng.Intn(1000)
	switch {
	case n < 930:
		return "OK"
	case n < 960:
		return fmt.Sprintf("WARNINGS: %d", rng.Intn(5)+1)
	case n < 995:
		msg := errorTemplates[rng.Intn(len(errorTemplates))]
		if containsVerb(msg) {
			return fmt.Sprintf(msg, vmid)
		}
		return msg
	case n < 998:
		return "unknown"
	}
	return ""
}

func containsVerb(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && s[i+1] == 'd' {
			return true
		}
	}
	return false
}
