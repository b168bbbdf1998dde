package sim

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// The task log endpoint: GET /nodes/{node}/tasks/{upid}/log?start=&limit=
// (PBS: any node, "localhost" by convention) answers
// {"data":[{"n":1,"t":"..."}],"total":N} like PVE's and PBS's
// read_task_log. A node has the logs of the tasks it holds (running ones
// and those still in its index); like PVE, a log it does not have is one
// line "unable to open file - No such file or directory"; PBS answers an
// error. Logs are realistic for vzdump (one guest or several), migrations,
// PBS backups and verification, and generic otherwise; a running task's
// log grows with the fleet's clock.

// logLine is an item of a task log.
type logLine struct {
	N int    `json:"n"`
	T string `json:"t"`
}

// noLogLine is PVE's answer for a log it cannot open.
const noLogLine = "unable to open file - No such file or directory"

// isLogPath reports whether segs is /nodes/{node}/tasks/{upid}/log.
func isLogPath(segs []string) bool {
	return len(segs) == 5 && segs[0] == "nodes" && segs[2] == "tasks" && segs[4] == "log"
}

// taskLog answers the log endpoint for node n (PVE: the {node} of the
// path, resolved; PBS: the server).
func (s *nodeServer) taskLog(r *http.Request, n *node, upid string) reply {
	pbs := n.remote.kind == task.PBS
	pr := newParamReader(r.URL.Query(), pbs, "start", "limit", "download", "test-status", "_dc")
	start := pr.int("start", 0, 0)
	limit := pr.int("limit", 50, 0)
	if len(pr.errs) > 0 {
		return s.paramError(pr.errs)
	}
	var u task.UPID
	var err error
	if pbs {
		u, err = task.ParsePBS(upid)
	} else {
		u, err = task.ParsePVE(upid)
	}
	if err != nil {
		return s.paramError(map[string]string{"upid": "unable to parse worker upid"})
	}
	lines, ok := n.log(u, s.f.now())
	if !ok {
		if pbs {
			return pveError(http.StatusBadRequest, "task log not found - No such file or directory (os error 2)", nil)
		}
		lines = []string{noLogLine}
	}
	total := len(lines)
	from := min(int(start), total)
	to := total
	if limit > 0 {
		to = min(total, from+int(limit))
	}
	page := make([]logLine, 0, to-from)
	for i := from; i < to; i++ {
		page = append(page, logLine{N: i + 1, T: lines[i]})
	}
	return jsonReply(page, total, 0)
}

// log returns the log of task u as of now, if the node holds the task.
func (n *node) log(u task.UPID, now int64) ([]string, bool) {
	a := n.act
	a.mu.Lock()
	a.advance(now)
	var r rec
	found := false
	for i := range a.running {
		if a.upid(&a.running[i]) == u {
			r, found = a.running[i], true
			break
		}
	}
	for k := 0; !found && k < a.index.len(); k++ {
		if x := a.index.newest(k); a.upid(x) == u {
			r, found = *x, true
		}
	}
	var status string
	if found && r.end() <= a.frontier {
		status = statuses[r.status]
	}
	user := ""
	var plan dumpPlan
	if found {
		user = a.userName(&r)
		if u.Type == "vzdump" && u.Kind == task.PVE {
			plan = a.dumpPlan(&r)
		}
	}
	a.mu.Unlock()
	if !found {
		return nil, false
	}
	w := &logWriter{u: u, node: n.name, user: user, start: int64(r.start), now: min(now, r.end()), status: status, plan: plan}
	h := fnv.New64a()
	h.Write([]byte(u.String()))
	w.rng = rand.New(rand.NewPCG(h.Sum64(), 7))
	w.write()
	return w.lines, true
}

// logWriter writes one task's log.
type logWriter struct {
	u      task.UPID
	node   string
	user   string
	start  int64 // task start
	now    int64 // the log covers the task up to now (its end when finished)
	status string
	rng    *rand.Rand
	plan   dumpPlan // vzdump
	lines  []string
	t      int64 // the time of the line being written
}

// add appends a line at time t (PBS lines carry their time).
func (w *logWriter) add(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if w.u.Kind == task.PBS {
		text = time.Unix(w.t, 0).UTC().Format("2006-01-02T15:04:05Z07:00") + ": " + text
	}
	w.lines = append(w.lines, text)
}

// step advances the log's clock by d seconds and reports whether the task
// had got that far by now.
func (w *logWriter) step(d int64) bool {
	w.t += d
	return w.t <= w.now
}

func (w *logWriter) finished() bool { return w.status != "" }

func (w *logWriter) failed() bool {
	return w.finished() && w.status != "OK" && !strings.HasPrefix(w.status, "WARNINGS: ")
}

// failureAt is the share of the task's time after which a failure shows.
func (w *logWriter) failureAt() int64 { return w.start + (w.now-w.start)*2/3 }

func (w *logWriter) write() {
	w.t = w.start
	switch {
	case w.u.Type == "vzdump" && w.u.Kind == task.PVE:
		w.vzdump()
	case w.u.Type == "qmigrate" || w.u.Type == "vzmigrate":
		w.migrate()
	case w.u.Kind == task.PBS && w.u.Type == "backup":
		w.pbsBackup()
	case w.u.Kind == task.PBS && strings.HasPrefix(w.u.Type, "verif"):
		w.verify()
	case w.u.Kind == task.PBS && w.u.Type == "syncjob":
		w.syncJob()
	case w.u.Kind == task.PBS && w.u.Type == "garbage_collection":
		w.garbageCollection()
	case w.u.Kind == task.PBS && w.u.Type == "prunejob":
		w.pruneJob()
	default:
		w.generic()
	}
	w.end()
}

// end writes the task's last line once it has finished.
func (w *logWriter) end() {
	if !w.finished() {
		return
	}
	w.t = w.now
	switch {
	case w.status == statuses[stUnknownPVE], w.u.Kind == task.PBS && w.status == statuses[stUnknownPBS]:
		// PVE says "unexpected status" and PBS "unknown" when the log
		// has no TASK line: the worker died before writing one.
	case w.status == "OK":
		w.add("TASK OK")
	case strings.HasPrefix(w.status, "WARNINGS: "):
		w.add("TASK %s", w.status)
	default:
		w.add("TASK ERROR: %s", w.status)
	}
}

func hms(secs int64) string {
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}

func (w *logWriter) stamp() string {
	return time.Unix(w.t, 0).UTC().Format("2006-01-02 15:04:05")
}

// vzdump logs a backup job as PVE's VZDump.pm does (see vzdump.go): its
// plan says which guests, when and how each ends. A guest's lines run
// from its "Starting Backup of VM" line to the next guest's, a warning
// included ("WARN: ..."; after "Backup finished at" when uploading the
// guest's log to PBS failed, as exec_backup_task does it).
func (w *logWriter) vzdump() {
	pl := w.plan
	var cmd strings.Builder
	cmd.WriteString("vzdump")
	for _, g := range pl.guests {
		cmd.WriteString(" " + strconv.Itoa(g.vmid))
	}
	if w.u.ID == "" && !pl.client {
		fmt.Fprintf(&cmd, " --mode snapshot --storage %s --notes-template '{{guestname}}' --node %s --prune-backups 'keep-daily=7,keep-weekly=4'", pl.storage, w.node)
	} else {
		fmt.Fprintf(&cmd, " --storage %s --mode snapshot --remove 0 --node %s", pl.storage, w.node)
	}
	w.add("INFO: starting new backup job: %s", cmd.String())
	failed := false
	for _, g := range pl.guests {
		if g.outcome == outSkipped {
			break
		}
		if !w.stepTo(w.start + g.begin) {
			return
		}
		began := w.t
		kind, group := "qemu", "vm"
		if g.lxc {
			kind, group = "lxc", "ct"
		}
		running := g.g == nil || g.g.running
		w.add("INFO: Starting Backup of VM %d (%s)", g.vmid, kind)
		w.add("INFO: Backup started at %s", w.stamp())
		mode := "snapshot"
		if running {
			w.add("INFO: status = running")
		} else {
			w.add("INFO: status = stopped")
			mode = "stop"
		}
		w.add("INFO: backup mode: %s", mode)
		w.add("INFO: ionice priority: 7")
		if pl.storage == storagePBS {
			w.add("INFO: creating Proxmox Backup Server archive '%s/%d/%s'", group, g.vmid, time.Unix(w.t, 0).UTC().Format("2006-01-02T15:04:05Z"))
		} else {
			ext := ".vma.zst"
			if g.lxc {
				ext = ".tar.zst"
			}
			w.add("INFO: creating vzdump archive '/var/lib/vz/dump/vzdump-%s-%d-%s%s'", kind, g.vmid, time.Unix(w.t, 0).UTC().Format("2006_01_02-15_04_05"), ext)
		}
		size := 8 + w.rng.IntN(120)
		last := int64(0)
		for pct := 10 + w.rng.IntN(20); pct < 100; pct += 20 + w.rng.IntN(30) {
			at := g.dur * int64(pct) / 100
			if at <= last {
				continue
			}
			if !w.stepTo(began + at) {
				return
			}
			last = at
			w.add("INFO: %3d%% (%.1f GiB of %d.0 GiB) in %ds, read: %d.%d MiB/s, write: %d.%d MiB/s", pct, float64(size*pct)/100, size, at, 200+w.rng.IntN(800), w.rng.IntN(10), 20+w.rng.IntN(200), w.rng.IntN(10))
		}
		if g.outcome == outCut || !w.stepTo(began+g.dur) {
			return
		}
		switch g.outcome {
		case outError:
			w.add("ERROR: Backup of VM %d failed - %s", g.vmid, g.err)
			w.add("INFO: Failed at %s", w.stamp())
			failed = true
			continue
		}
		w.add("INFO: 100%% (%d.0 GiB of %d.0 GiB) in %ds, read: %d.%d MiB/s, write: %d.%d MiB/s", size, size, g.dur, 200+w.rng.IntN(800), w.rng.IntN(10), 20+w.rng.IntN(200), w.rng.IntN(10))
		w.add("INFO: backup is sparse: %d.%02d GiB (%d%%) total zero data", w.rng.IntN(size), w.rng.IntN(100), w.rng.IntN(60))
		w.add("INFO: transferred %d.00 GiB in %d seconds (%d.0 MiB/s)", size, max(g.dur, 1), 100+w.rng.IntN(900))
		if g.outcome == outWarn && pl.storage != storagePBS {
			w.add("WARN: unable to add notes - unable to open file '/var/lib/vz/dump/vzdump-%s-%d.notes.tmp' - Permission denied", kind, g.vmid)
		}
		w.add("INFO: Finished Backup of VM %d (%s)", g.vmid, hms(g.dur))
		w.add("INFO: Backup finished at %s", w.stamp())
		if g.outcome == outWarn && pl.storage == storagePBS {
			w.add("WARN: uploading backup task log failed: command '/usr/bin/proxmox-backup-client upload-log' failed: exit code 255")
		}
	}
	if !w.finished() {
		return
	}
	w.t = w.now
	switch {
	case pl.jobErr != "":
		w.add("ERROR: Backup job failed - %s", pl.jobErr)
	case pl.hook, w.status == statuses[stUnknownPVE]:
		// The hook died before the job's last line; a dead node wrote none.
	case failed:
		w.add("INFO: Backup job finished with errors")
	default:
		w.add("INFO: Backup job finished successfully")
	}
}

// stepTo advances the log's clock to t (if later) and reports whether
// the task had got that far by now.
func (w *logWriter) stepTo(t int64) bool {
	w.t = max(w.t, t)
	return w.t <= w.now
}

// migrate logs a guest migration.
func (w *logWriter) migrate() {
	target := fmt.Sprintf("pve%d", 1+w.rng.IntN(3))
	if strings.HasSuffix(w.node, target[3:]) {
		target = w.node + "b"
	}
	guest := "VM"
	if w.u.Type == "vzmigrate" {
		guest = "CT"
	}
	w.add("%s starting migration of %s %s to node '%s' (10.0.0.%d)", w.stamp(), guest, w.u.ID, target, 10+w.rng.IntN(200))
	w.add("%s found local disk 'local-lvm:vm-%s-disk-0' (attached)", w.stamp(), w.u.ID)
	w.add("%s copying local disk images", w.stamp())
	w.add("%s starting VM %s on remote node '%s'", w.stamp(), w.u.ID, target)
	mem := 2 + w.rng.IntN(30)
	steps := int64(4)
	for i := int64(1); i <= steps; i++ {
		if !w.step(max((w.now-w.start)/(steps+1), 1)) {
			return
		}
		if w.failed() && w.t >= w.failureAt() {
			w.add("%s ERROR: online migrate failure - %s", w.stamp(), w.status)
			w.add("%s aborting phase 2 - cleanup resources", w.stamp())
			w.add("%s migrate_cancel", w.stamp())
			return
		}
		w.add("%s migration active, transferred %.1f GiB of %d.0 GiB VM-state, %d.%d MiB/s", w.stamp(), float64(int64(mem)*i)/float64(steps), mem, 300+w.rng.IntN(800), w.rng.IntN(10))
	}
	if !w.finished() {
		return
	}
	w.t = w.now
	w.add("%s migration status: completed", w.stamp())
	w.add("%s migration finished successfully (duration %s)", w.stamp(), hms(w.now-w.start))
}

// pbsBackup logs a backup as PBS's backup protocol handler does.
func (w *logWriter) pbsBackup() {
	store, group, _ := strings.Cut(w.u.ID, ":")
	snap := group + "/" + time.Unix(w.start, 0).UTC().Format("2006-01-02T15:04:05Z")
	w.add("starting new backup on datastore '%s' from ::ffff:10.0.0.%d: %q", store, 10+w.rng.IntN(200), snap)
	w.add("download 'index.json.blob' from previous backup.")
	w.add("register chunks in 'drive-scsi0.img.fidx' from previous backup.")
	w.add("download 'drive-scsi0.img.fidx' from previous backup.")
	w.add("created new fixed index 1 (%q)", snap+"/drive-scsi0.img.fidx")
	if !w.step(max((w.now-w.start)*3/4, 1)) {
		return
	}
	if w.failed() {
		w.add("backup ended and finish failed: backup ended but finished flag is not set.")
		w.add("removing unfinished backup")
		return
	}
	chunks := 2048 + w.rng.IntN(16384)
	dup := chunks * (80 + w.rng.IntN(19)) / 100
	w.add("Size: %d", int64(chunks)*4<<20)
	w.add("Chunk count: %d", chunks)
	w.add("Upload size: %d (%d%%)", int64(chunks-dup)*4<<20, (chunks-dup)*100/chunks)
	w.add("Duplicates: %d+0 (%d%%)", dup, dup*100/chunks)
	w.add("Compression: %d%%", 30+w.rng.IntN(40))
	w.add("successfully closed fixed index 1")
	w.add("add blob %q (%d bytes, comp: %d)", "/mnt/datastore/"+store+"/"+snap+"/index.json.blob", 400+w.rng.IntN(200), 300+w.rng.IntN(100))
	if !w.finished() {
		return
	}
	w.t = w.now
	w.add("syncing filesystem")
	w.add("successfully finished backup")
	w.add("backup finished successfully")
}

// verify logs a verification job or a snapshot verification.
func (w *logWriter) verify() {
	store, rest, _ := strings.Cut(w.u.ID, ":")
	if w.u.Type == "verificationjob" {
		w.add("Starting datastore verification job '%s'", w.u.ID)
		w.add("verify datastore %s", store)
		w.add("found %d groups", 3+w.rng.IntN(20))
	} else {
		rest = strings.TrimSuffix(rest, "/")
	}
	n := 2 + w.rng.IntN(5)
	for i := range n {
		if !w.step(max((w.now-w.start)/int64(n+1), 1)) {
			return
		}
		snap := fmt.Sprintf("vm/%d/%s", 100+i, time.Unix(w.t-86400, 0).UTC().Format("2006-01-02T15:04:05Z"))
		if w.u.Type != "verificationjob" {
			snap = rest
		}
		w.add("verify %s:%s", store, snap)
		w.add("  check index.json.blob")
		w.add("  check drive-scsi0.img.fidx")
		if w.failed() && i == n-1 {
			w.add("  can't verify chunk, load failed - store '%s', unable to load chunk '%016x%016x' - blob too small", store, w.rng.Uint64(), w.rng.Uint64())
			w.add("  corrupt chunk renamed to \"/mnt/datastore/%s/.chunks/%04x/%016x.0.bad\"", store, w.rng.IntN(65536), w.rng.Uint64())
			w.add("  verified %d.%02d/%d.00 MiB in %d.%02d seconds, speed %d.%02d/%d.%02d MiB/s (1 errors)", 100+w.rng.IntN(900), w.rng.IntN(100), 1000+w.rng.IntN(9000), 1+w.rng.IntN(60), w.rng.IntN(100), 50+w.rng.IntN(200), w.rng.IntN(100), 100+w.rng.IntN(300), w.rng.IntN(100))
			w.add("verify %s:%s/drive-scsi0.img.fidx failed: chunks could not be verified", store, snap)
			continue
		}
		w.add("  verified %d.%02d/%d.00 MiB in %d.%02d seconds, speed %d.%02d/%d.%02d MiB/s (0 errors)", 100+w.rng.IntN(900), w.rng.IntN(100), 1000+w.rng.IntN(9000), 1+w.rng.IntN(60), w.rng.IntN(100), 50+w.rng.IntN(200), w.rng.IntN(100), 100+w.rng.IntN(300), w.rng.IntN(100))
	}
	if w.failed() && w.status != "Some error message" && w.status != "Something went wrong" {
		return
	}
	if w.failed() {
		w.add("Failed to verify the following snapshots/groups:")
		w.add("\t%s", rest)
	}
}

// generic logs any other task: who started it, and on failure why.
func (w *logWriter) generic() {
	if w.u.Kind == task.PBS {
		w.add("starting %s task (%s)", w.u.Type, w.u.ID)
	} else if w.u.ID != "" {
		w.add("%s %s %s started by %s", w.u.Type, w.u.ID, w.node, w.user)
	} else {
		w.add("%s on %s started by %s", w.u.Type, w.node, w.user)
	}
	if !w.step(max(w.now-w.start, 0)) && !w.finished() {
		return
	}
	if w.failed() && w.status != statuses[stUnknownPVE] {
		w.add("%s", w.status)
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(w.status, "WARNINGS: ")); err == nil && strings.HasPrefix(w.status, "WARNINGS: ") {
		for i := range n {
			w.add("WARN: check %d reported a problem", i+1)
		}
	}
}
