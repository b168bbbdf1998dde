package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The jobs of a simulated PBS server, per datastore: a prune job, a sync
// job pulling from a remote PBS, a verification job and garbage
// collection, each night after the backups. Their worker ids are PBS's
// (proxmox-backup src/server/*_job.rs, src/api2/pull.rs):
//
//	prunejob            <store>                       (root namespace)
//	syncjob             <remote>:<remote-store>:<store>:<ns>:<job>  (ns "" for the root)
//	verificationjob     <store>:<job>
//	garbage_collection  <store>
//
// Their outcomes are realistic per type: a sync ends in WARNINGS when it
// had to fall back to the old protocol, or fails with "sync failed with
// some errors." when a group could not be copied; a verification job
// fails with "verification failed - please check the log for details"
// when a chunk is corrupt; garbage collection warns about missing
// chunks; a prune job warns when it could not remove a snapshot.

// pbsStores are the datastores of every simulated PBS server.
var pbsStores = []string{"store1", "store2"}

// pbsHosts are the hosts that back themselves up to each PBS server
// (host/<name> groups; the '-' is escaped \x2d in the UPID).
var pbsHosts = []string{"fs-01", "mail-01", "gitlab"}

// Statuses of PBS jobs, verbatim from proxmox-backup.
const (
	// errSyncSome: src/server/pull.rs, pull_store: bail!("sync failed
	// with some errors.") when a group or namespace failed.
	errSyncSome = iota + stUnknownPBS + 1
	// errVerifyJob: src/server/verify_job.rs, do_verification_job:
	// "verification failed - please check the log for details" when a
	// snapshot failed to verify.
	errVerifyJob
)

// sourcedStatuses are statuses not in the fixtures' status-strings.json,
// each with the source it is copied from (see the constants above).
var sourcedStatuses = map[string]string{
	"sync failed with some errors.":                          "proxmox-backup src/server/pull.rs",
	"verification failed - please check the log for details": "proxmox-backup src/server/verify_job.rs",
}

func init() {
	statuses = append(statuses, "sync failed with some errors.", "verification failed - please check the log for details")
	if statuses[errSyncSome] != "sync failed with some errors." || statuses[errVerifyJob] != "verification failed - please check the log for details" {
		panic("sim: PBS job statuses out of place")
	}
}

// jobStatus draws the exit status of a PBS job of type wt.
func jobStatus(rng *rand.Rand, wt *workerType) uint16 {
	x := rng.IntN(1000)
	switch wt.name {
	case pbsSyncJob.name:
		switch {
		case x < 860:
			return stOK
		case x < 940:
			return stWarn1 + 1 // the two warnings of the old-protocol fallback
		case x < 990:
			return errSyncSome
		}
	case pbsVerifyJob.name:
		switch {
		case x < 900:
			return stOK
		case x < 980:
			return errVerifyJob
		}
	case pbsGC.name:
		switch {
		case x < 880:
			return stOK
		case x < 970:
			return uint16(stWarn1 + rng.IntN(3))
		}
	case pbsPruneJob.name:
		switch {
		case x < 960:
			return stOK
		case x < 985:
			return stWarn1
		}
	default:
		return exitStatus(rng, *wt, true)
	}
	if x < 997 {
		return uint16(pbsErrs[rng.IntN(len(pbsErrs))])
	}
	return stUnknownPBS
}

// warnings returns n of "WARNINGS: n", or 0.
func (w *logWriter) warnings() int {
	n, err := strconv.Atoi(strings.TrimPrefix(w.status, "WARNINGS: "))
	if err != nil || !strings.HasPrefix(w.status, "WARNINGS: ") {
		return 0
	}
	return n
}

// snapTime is a snapshot time of the last nights, as PBS writes it.
func (w *logWriter) snapTime(daysAgo int) string {
	t := (w.start/day-int64(daysAgo))*day + backupStart + int64(w.rng.IntN(7200))
	return time.Unix(t, 0).UTC().Format("2006-01-02T15:04:05Z")
}

// syncJob logs a PBS sync job (src/server/pull.rs).
func (w *logWriter) syncJob() {
	parts := strings.Split(w.u.ID, ":")
	remote, rstore, store := parts[0], "", ""
	if len(parts) >= 4 {
		rstore, store = parts[1], parts[2]
	}
	w.add("Starting datastore sync job '%s'", w.u.ID)
	w.add("task triggered by schedule 'daily'")
	w.add("sync datastore '%s' from '%s/%s'", store, remote, rstore)
	if w.warnings() == 2 {
		w.add("WARN: Could not query remote for namespaces (404) -> temporarily switching to backwards-compat mode")
		w.add("WARN: Either make backwards-compat mode explicit (max-depth == 0) or upgrade remote system.")
	}
	groups := 3 + w.rng.IntN(6)
	failAt := -1
	if w.failed() && w.status == statuses[errSyncSome] {
		failAt = w.rng.IntN(groups)
	}
	for i := range groups {
		if !w.step(max((w.now-w.start)/int64(groups+1), 1)) {
			return
		}
		group := fmt.Sprintf("vm/%d", 100+10*i+w.rng.IntN(10))
		w.add("sync group %s", group)
		if i == failAt {
			w.add("sync group %s failed - unable to acquire lock on snapshot directory \"/mnt/datastore/%s/%s/%s\" - locked by another operation", group, store, group, w.snapTime(1))
			continue
		}
		w.add("sync snapshot %s/%s", group, w.snapTime(1))
		w.add("sync archive drive-scsi0.img.fidx")
		w.add("downloaded %d.%03d MiB (%d.%03d MiB/s)", 100+w.rng.IntN(4000), w.rng.IntN(1000), 20+w.rng.IntN(200), w.rng.IntN(1000))
		w.add("percentage done: %.2f%% (%d/%d groups)", float64(100*(i+1))/float64(groups), i+1, groups)
	}
	if w.finished() && failAt < 0 && !w.failed() {
		w.add("Finished syncing namespace , current progress: %d groups, 0 snapshots", groups)
	}
}

// garbageCollection logs a PBS garbage collection (pbs-datastore
// datastore.rs garbage_collection).
func (w *logWriter) garbageCollection() {
	store := w.u.ID
	w.add("starting garbage collection on store %s", store)
	w.add("task triggered by schedule 'daily'")
	w.add("Start GC phase1 (mark used chunks)")
	for i := range w.warnings() {
		w.add("WARN: warning: unable to access non-existent chunk %016x%016x%016x%016x, required by \"/mnt/datastore/%s/vm/%d/%s/drive-scsi0.img.fidx\"",
			w.rng.Uint64(), w.rng.Uint64(), w.rng.Uint64(), w.rng.Uint64(), store, 100+i, w.snapTime(2))
	}
	for pct := 25; pct <= 100; pct += 25 {
		if !w.step(max((w.now-w.start)/8, 1)) {
			return
		}
		w.add("marked %d%% (%d of %d index files)", pct, pct*4, 400)
	}
	w.add("Start GC phase2 (sweep unused chunks)")
	for pct := 25; pct <= 100; pct += 25 {
		if !w.step(max((w.now-w.start)/8, 1)) {
			return
		}
		w.add("processed %d%% (%d chunks)", pct, pct*1234)
	}
	if w.failed() {
		return
	}
	w.add("Removed garbage: %d.%03d GiB", w.rng.IntN(50), w.rng.IntN(1000))
	w.add("Removed chunks: %d", w.rng.IntN(20000))
	w.add("Original data usage: %d.%03d TiB", 1+w.rng.IntN(40), w.rng.IntN(1000))
	w.add("On-Disk usage: %d.%03d GiB (%d.%02d%%)", 100+w.rng.IntN(900), w.rng.IntN(1000), 2+w.rng.IntN(20), w.rng.IntN(100))
	w.add("On-Disk chunks: %d", 100000+w.rng.IntN(900000))
	w.add("Deduplication factor: %d.%02d", 5+w.rng.IntN(40), w.rng.IntN(100))
	w.add("Average chunk size: %d.%03d MiB", 1+w.rng.IntN(3), w.rng.IntN(1000))
}

// pruneJob logs a PBS prune job (src/server/prune_job.rs).
func (w *logWriter) pruneJob() {
	store, _, _ := strings.Cut(w.u.ID, ":")
	w.add("prune job 'default-%s'", store)
	w.add("task triggered by schedule 'daily'")
	w.add("Starting datastore prune on datastore '%s', root namespace, down to full depth", store)
	w.add("retention options: --keep-daily 7 --keep-weekly 4")
	groups := 3 + w.rng.IntN(6)
	warn := -1
	if w.warnings() > 0 {
		warn = w.rng.IntN(groups)
	}
	for i := range groups {
		if !w.step(max((w.now-w.start)/int64(groups+1), 1)) {
			return
		}
		group := fmt.Sprintf("vm/%d", 100+10*i+w.rng.IntN(10))
		w.add("Pruning group :\"%s\"", group)
		for d := 1; d <= 3; d++ {
			w.add("keep %s/%s", group, w.snapTime(d))
		}
		old := w.snapTime(9)
		w.add("remove %s/%s", group, old)
		if i == warn {
			w.add("WARN: failed to remove dir \"%s/%s\": removing backup snapshot \"/mnt/datastore/%s/%s/%s\" failed - Directory not empty (os error 39)", group, old, store, group, old)
		}
	}
}
