package sim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/taskfleet/taskfleet/task"
)

const (
	day         = 86400     // seconds
	bootPeriod  = 600 * day // nodes reboot every 600 days, so some pstarts need 9 hex digits
	pidFirst    = 1000      // generated PVE pids lie in [pidFirst, pidStarted)
	pidStarted  = 4_100_000 // pids of StartTask's tasks count up from here
	pidMax      = 4_194_304 // Linux pid_max
	seqStarted  = 60000     // PBS task counters of StartTask's tasks, within a day
	pbsPerDay   = 1 << 16   // PBS task counter space per day since boot
	backupStart = 3600      // the nightly backup starts at 01:00 UTC
	singleStart = 21 * 3600 // the guests' own backup jobs start at 21:00 UTC
)

// profile is what a node is: its names, seeds and guests. It is fixed at
// creation and derived only from the seed, the remote and the node.
type profile struct {
	kind       task.Kind
	remote     string
	node       string
	nodeNum    int     // n of "pve-c001-n<n>"; 1 for PBS
	seed       uint64  // per node
	remoteSeed uint64  // per remote: cluster-wide schedules
	rate       float64 // background tasks per hour
	bootOffset int64   // the node boots at bootOffset + k*bootPeriod

	vms, cts []string // PVE: guest ids on this node

	gt        guestTable // PVE: the guests of vms and cts (guests.go)
	stopBase  int64      // PVE node 1: the fleet's creation, when its guests' backups stop; 0: none
	stopAfter int64      // Config.BackupStopAfter, seconds

	guests     []pbsGuest // PBS: guests backed up here each night
	syncJobs   []string   // PBS: sync jobs' worker ids, one per datastore
	verifyJobs []string   // PBS: verification jobs' worker ids, one per datastore
}

// pbsGuest is a guest that a PVE cluster backs up to a PBS server.
type pbsGuest struct {
	group  string // "vm/123" or "ct/123"
	store  string
	client uint8 // index into userNames of the backup client's token
}

// gen is one generated task before it is stored as a rec.
type gen struct {
	start, dur int64
	typ        uint16
	id         string
	user       uint8
	status     uint16
}

// hashSeed derives a 64-bit seed from the fleet seed and names.
func hashSeed(seed int64, parts ...string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// newProfile builds the profile of a node.
func newProfile(seed int64, kind task.Kind, remote, node string, nodeNum int, taskRate float64) *profile {
	p := &profile{
		kind: kind, remote: remote, node: node, nodeNum: nodeNum,
		seed:       hashSeed(seed, remote, node),
		remoteSeed: hashSeed(seed, remote),
		rate:       taskRate,
	}
	rng := rand.New(rand.NewPCG(p.seed, 0x5eed))
	p.bootOffset = rng.Int64N(bootPeriod)
	if kind == task.PBS {
		p.rate = taskRate / 2
		n := 100 + rng.IntN(201)
		for _, v := range rng.Perm(900)[:n] {
			g := pbsGuest{group: "vm/" + strconv.Itoa(100+v), store: "store1", client: backupClientIdx(v % backupClients)}
			if v%10 >= 7 {
				g.group = "ct/" + strconv.Itoa(100+v)
			}
			if v%3 == 0 {
				g.store = "store2"
			}
			p.guests = append(p.guests, g)
		}
		for i, h := range pbsHosts {
			p.guests = append(p.guests, pbsGuest{group: "host/" + h, store: "store1", client: backupClientIdx(i % backupClients)})
		}
		// One sync and one verification job per datastore; the worker ids
		// as PBS writes them (pbsjobs.go).
		for _, st := range pbsStores {
			p.syncJobs = append(p.syncJobs, fmt.Sprintf("pbs-offsite:offsite-%s:%s::s-%08x-%04x", st, st, rng.Uint32(), rng.Uint32()&0xffff))
			p.verifyJobs = append(p.verifyJobs, fmt.Sprintf("%s:v-%08x-%04x", st, rng.Uint32(), rng.Uint32()&0xffff))
		}
		return p
	}
	n := 40 + rng.IntN(61)
	ids := rng.Perm(100)[:n]
	slices.Sort(ids)
	for _, i := range ids {
		vmid := strconv.Itoa(100*nodeNum + i)
		if i%10 >= 7 {
			p.cts = append(p.cts, vmid)
		} else {
			p.vms = append(p.vms, vmid)
		}
	}
	return p
}

// boot returns the boot time of the node at t.
func (p *profile) boot(t int64) int64 {
	k := t - p.bootOffset
	m := k % bootPeriod
	if m < 0 {
		m += bootPeriod
	}
	return t - m
}

// dayRand returns the random source of a node's day.
func (p *profile) dayRand(d int64) *rand.Rand {
	return rand.New(rand.NewPCG(p.seed, uint64(d)))
}

// generate returns the tasks the node starts on day d (days since the
// epoch), sorted by start time.
func (p *profile) generate(d int64) []gen {
	rng := p.dayRand(d)
	var out []gen
	if p.kind == task.PBS {
		out = p.generatePBS(d, rng)
	} else {
		out = p.generatePVE(d, rng)
	}
	slices.SortStableFunc(out, func(a, b gen) int { return int(a.start - b.start) })
	return out
}

// background draws the day's background arrivals: a Poisson process whose
// rate follows hourWeight.
func (p *profile) background(d int64, rng *rand.Rand, emit func(start int64)) {
	for h := range 24 {
		lambda := p.rate * hourWeight[h] // per hour
		if lambda <= 0 {
			continue
		}
		from := float64(d*day + int64(h)*3600)
		end := from + 3600
		for t := from + rng.ExpFloat64()*3600/lambda; t < end; t += rng.ExpFloat64() * 3600 / lambda {
			emit(int64(t))
		}
	}
}

func (p *profile) generatePVE(d int64, rng *rand.Rand) []gen {
	var out []gen
	all := append(append([]string(nil), p.vms...), p.cts...)
	guestFor := func(typ string) string {
		pool := all
		switch {
		case len(typ) > 2 && typ[:2] == "qm" && len(p.vms) > 0:
			pool = p.vms
		case len(typ) > 2 && typ[:2] == "vz" && typ != "vzdump" && len(p.cts) > 0:
			pool = p.cts
		}
		if len(pool) == 0 {
			return ""
		}
		return pool[rng.IntN(len(pool))]
	}
	// manualGuest picks a guest for a manual backup: one that some job
	// backs up and that does not stop being backed up.
	manualGuest := func(rng *rand.Rand) string {
		gs := p.pveGuests()
		for range 8 {
			if len(gs) == 0 {
				break
			}
			g := &gs[rng.IntN(len(gs))]
			if g.policy != polNone && g.stopAt == math.MaxInt64 {
				return strconv.Itoa(g.vmid)
			}
		}
		return ""
	}
	p.background(d, rng, func(start int64) {
		wt := pveTypes[pick(rng, func(i int) int { return pveTypes[i].weight }, len(pveTypes))]
		var id string
		switch wt.id {
		case idGuest:
			id = guestFor(wt.name)
		case idStorage:
			id = [...]string{"local", "cephfs", "nfs-iso"}[rng.IntN(3)]
		case idService:
			id = [...]string{"pveproxy", "pvedaemon", "pvestatd"}[rng.IntN(3)]
		}
		u := pveUserIdx[pick(rng, func(i int) int { return pveUsers[i].weight }, len(pveUsers))]
		g := gen{start: start, dur: duration(rng, wt.minDur, wt.maxDur), typ: typeIndex[wt.name], id: id, user: u, status: exitStatus(rng, wt, false)}
		if wt.name == "vzdump" {
			// A manual backup of a guest that is backed up anyway.
			if id = manualGuest(rng); id == "" {
				return
			}
			pl := p.dumpPlanFor(start, id)
			g.id, g.dur, g.status = id, pl.dur, pl.status
		}
		out = append(out, g)
	})

	// The daily update (pve-daily-update.timer) at a random time of the night.
	apt := pveTypes[slices.IndexFunc(pveTypes, func(w workerType) bool { return w.name == "aptupdate" })]
	out = append(out, gen{start: d*day + 3600 + rng.Int64N(5*3600), dur: duration(rng, apt.minDur, apt.maxDur), typ: typeIndex["aptupdate"], user: userRoot, status: exitStatus(rng, apt, false)})

	// The nightly backup job: the cluster starts it at about 01:00; each
	// node backs up its job's guests one after the other in one vzdump
	// task (vzdump.go). The guests with a job of their own follow at
	// about 21:00, one task each.
	cluster := rand.New(rand.NewPCG(p.remoteSeed, uint64(d)))
	t := d*day + backupStart + cluster.Int64N(300) + rng.Int64N(30)
	if job := p.jobGuests(t); len(job) > 0 {
		id := ""
		if len(job) == 1 {
			id = strconv.Itoa(job[0].vmid)
		}
		pl := p.dumpPlanFor(t, id)
		out = append(out, gen{start: t, dur: pl.dur, typ: typeIndex["vzdump"], id: id, user: userRoot, status: pl.status})
	}
	t = d*day + singleStart + rng.Int64N(60)
	gs := p.pveGuests()
	for i := range gs {
		if !gs[i].backedUpBy(polSingle, t) {
			continue
		}
		id := strconv.Itoa(gs[i].vmid)
		pl := p.dumpPlanFor(t, id)
		out = append(out, gen{start: t, dur: pl.dur, typ: typeIndex["vzdump"], id: id, user: userRoot, status: pl.status})
		t += pl.dur + 1 + rng.Int64N(5)
	}
	return out
}

func (p *profile) generatePBS(d int64, rng *rand.Rand) []gen {
	var out []gen
	base := d * day
	add := func(start int64, wt *workerType, id string, u uint8) {
		out = append(out, gen{start: start, dur: duration(rng, wt.minDur, wt.maxDur), typ: typeIndex[wt.name], id: id, user: u, status: exitStatus(rng, *wt, true)})
	}
	snapshot := func() string { // a backup of one of the last nights
		t := base - (1+rng.Int64N(7))*day + backupStart + rng.Int64N(7200)
		return fmt.Sprintf("%08X", t)
	}
	p.background(d, rng, func(start int64) {
		b := pbsBackground[pick(rng, func(i int) int { return pbsBackground[i].weight }, len(pbsBackground))]
		g := p.guests[rng.IntN(len(p.guests))]
		u := g.client
		var id string
		switch b.t {
		case &pbsReader:
			id = g.store + ":" + g.group + "/" + snapshot()
		case &pbsBackup:
			id = g.store + ":" + g.group
		case &pbsPrune:
			id, u = g.store+":"+g.group, pbsUserIdx[rng.IntN(len(pbsUserIdx))]
		case &pbsVerifySnap:
			id, u = g.store+":"+g.group+"/"+snapshot(), pbsUserIdx[rng.IntN(len(pbsUserIdx))]
		}
		add(start, b.t, id, u)
	})

	// The night: log rotation, prune jobs, the guests' backups in four
	// parallel streams, then sync, verification and garbage collection.
	add(base+rng.Int64N(60), &pbsLogrotate, "", userRoot)
	job := func(start int64, wt *workerType, id string) {
		out = append(out, gen{start: start, dur: duration(rng, wt.minDur, wt.maxDur), typ: typeIndex[wt.name], id: id, user: userRoot, status: jobStatus(rng, wt)})
	}
	for _, st := range pbsStores {
		job(base+1800+rng.Int64N(60), &pbsPruneJob, st)
	}
	const lanes = 4
	var lane [lanes]int64
	for i := range lane {
		lane[i] = base + backupStart + rng.Int64N(120)
	}
	for i, g := range p.guests {
		l := i % lanes
		dur := duration(rng, pbsBackup.minDur, pbsBackup.maxDur)
		out = append(out, gen{start: lane[l], dur: dur, typ: typeIndex[pbsBackup.name], id: g.store + ":" + g.group, user: g.client, status: exitStatus(rng, pbsBackup, true)})
		lane[l] += dur + 1 + rng.Int64N(10)
	}
	for i, id := range p.syncJobs {
		job(base+2*3600+int64(i)*600+rng.Int64N(60), &pbsSyncJob, id)
	}
	for i, id := range p.verifyJobs {
		job(base+3*3600+1800+int64(i)*900+rng.Int64N(60), &pbsVerifyJob, id)
	}
	for i, st := range pbsStores {
		job(base+4*3600+int64(i)*1800+rng.Int64N(60), &pbsGC, st)
	}
	return out
}
