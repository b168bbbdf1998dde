package sim

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// The vocabulary of the simulated activity. Worker types come from the
// fixtures' task-types tables and status strings verbatim from
// status-strings.json; a test checks both, so the sim cannot drift.

// idKind says what a worker type's id is.
type idKind uint8

const (
	idNone    idKind = iota // ""
	idGuest                 // a guest id of the node: "104"
	idStorage               // a storage name: "local"
	idService               // a service name: "pveproxy"
)

// workerType is one kind of background task.
type workerType struct {
	name           string
	weight         int     // relative frequency
	id             idKind  // PVE only; PBS ids are built per type
	minDur, maxDur float64 // seconds, drawn log-uniformly
	errs           []int   // indices into statuses of its plausible errors
}

// statuses is every exit status the sim produces; a rec stores an index.
// The first entries are fixed: OK, then WARNINGS: 1-5.
var statuses = []string{
	"OK",
	"WARNINGS: 1", "WARNINGS: 2", "WARNINGS: 3", "WARNINGS: 4", "WARNINGS: 5",
	"can't lock file '/var/lock/qemu-server/lock-300.conf' - got timeout", // 6
	"Configuration file 'nodes/pve-9l/qemu-server/105.conf' does not exist",
	"clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
	"command '/root/proxmox-vzbackup-rclone/vzbackup-rclone.sh job-abort' failed: exit code 1",
	"interrupted by signal", // 10
	"received interrupt",
	"job errors",
	"Some error message",
	"Something went wrong", // 14
	"unexpected status",    // 15: PVE's unknown
	"unknown",              // 16: PBS's unknown
}

const (
	stOK          = 0
	stWarn1       = 1
	errLock       = 6
	errNoConf     = 7
	errClone      = 8
	errHook       = 9
	errSignal     = 10
	errInterrupt  = 11
	errJob        = 12
	errGeneric    = 13
	errPBS        = 14
	stUnknownPVE  = 15
	stUnknownPBS  = 16
	maxWarnings   = 5
	statusRunning = "RUNNING" // PVE's status of a running task in lists
)

var (
	qmErrs     = []int{errLock, errNoConf, errInterrupt}
	plainErrs  = []int{errInterrupt, errGeneric}
	vzdumpErrs = []int{errSignal, errInterrupt, errHook, errLock, errJob}
	pbsErrs    = []int{errPBS, errGeneric}
)

// pveTypes is the background activity of a PVE node.
var pveTypes = []workerType{
	{name: "qmstart", weight: 10, id: idGuest, minDur: 2, maxDur: 30, errs: qmErrs},
	{name: "qmstop", weight: 3, id: idGuest, minDur: 1, maxDur: 20, errs: qmErrs},
	{name: "qmshutdown", weight: 6, id: idGuest, minDur: 5, maxDur: 180, errs: qmErrs},
	{name: "qmreboot", weight: 2, id: idGuest, minDur: 10, maxDur: 120, errs: qmErrs},
	{name: "vzstart", weight: 4, id: idGuest, minDur: 1, maxDur: 15, errs: plainErrs},
	{name: "vzstop", weight: 1, id: idGuest, minDur: 1, maxDur: 10, errs: plainErrs},
	{name: "vzshutdown", weight: 3, id: idGuest, minDur: 2, maxDur: 60, errs: plainErrs},
	{name: "qmigrate", weight: 3, id: idGuest, minDur: 30, maxDur: 900, errs: qmErrs},
	{name: "vzmigrate", weight: 1, id: idGuest, minDur: 20, maxDur: 300, errs: plainErrs},
	{name: "qmsnapshot", weight: 4, id: idGuest, minDur: 2, maxDur: 120, errs: qmErrs},
	{name: "qmdelsnapshot", weight: 3, id: idGuest, minDur: 2, maxDur: 60, errs: qmErrs},
	{name: "vzsnapshot", weight: 1, id: idGuest, minDur: 1, maxDur: 30, errs: plainErrs},
	{name: "qmclone", weight: 2, id: idGuest, minDur: 10, maxDur: 600, errs: []int{errClone, errLock}},
	{name: "qmcreate", weight: 2, id: idGuest, minDur: 2, maxDur: 30, errs: qmErrs},
	{name: "vzcreate", weight: 1, id: idGuest, minDur: 10, maxDur: 120, errs: plainErrs},
	{name: "qmdestroy", weight: 1, id: idGuest, minDur: 2, maxDur: 30, errs: []int{errNoConf, errLock}},
	{name: "vzdestroy", weight: 1, id: idGuest, minDur: 1, maxDur: 20, errs: plainErrs},
	{name: "qmconfig", weight: 4, id: idGuest, minDur: 1, maxDur: 5, errs: qmErrs},
	{name: "qmrestore", weight: 1, id: idGuest, minDur: 60, maxDur: 1800, errs: qmErrs},
	{name: "vncproxy", weight: 8, id: idGuest, minDur: 60, maxDur: 3600, errs: plainErrs},
	{name: "termproxy", weight: 3, id: idGuest, minDur: 60, maxDur: 3600, errs: plainErrs},
	{name: "spiceproxy", weight: 1, id: idGuest, minDur: 60, maxDur: 1800, errs: plainErrs},
	{name: "vncshell", weight: 2, id: idNone, minDur: 60, maxDur: 3600, errs: plainErrs},
	{name: "aptupdate", weight: 1, id: idNone, minDur: 5, maxDur: 60, errs: plainErrs},
	{name: "imgcopy", weight: 1, id: idNone, minDur: 30, maxDur: 600, errs: plainErrs},
	{name: "download", weight: 1, id: idStorage, minDur: 10, maxDur: 300, errs: plainErrs},
	{name: "move_volume", weight: 1, id: idGuest, minDur: 30, maxDur: 900, errs: qmErrs},
	{name: "resize", weight: 1, id: idGuest, minDur: 1, maxDur: 10, errs: qmErrs},
	{name: "vzdump", weight: 2, id: idGuest, minDur: 30, maxDur: 1200, errs: vzdumpErrs},
	{name: "hastart", weight: 1, id: idGuest, minDur: 1, maxDur: 10, errs: plainErrs},
	{name: "srvreload", weight: 1, id: idService, minDur: 1, maxDur: 5, errs: plainErrs},
}

// PBS worker types; their ids are built per type in generate.go.
var (
	pbsBackup     = workerType{name: "backup", minDur: 20, maxDur: 900, errs: pbsErrs}
	pbsReader     = workerType{name: "reader", minDur: 5, maxDur: 1800, errs: pbsErrs}
	pbsPrune      = workerType{name: "prune", minDur: 1, maxDur: 30, errs: pbsErrs}
	pbsPruneJob   = workerType{name: "prunejob", minDur: 30, maxDur: 300, errs: pbsErrs}
	pbsSyncJob    = workerType{name: "syncjob", minDur: 60, maxDur: 3600, errs: pbsErrs}
	pbsVerifyJob  = workerType{name: "verificationjob", minDur: 300, maxDur: 3600, errs: pbsErrs}
	pbsGC         = workerType{name: "garbage_collection", minDur: 60, maxDur: 1800, errs: pbsErrs}
	pbsLogrotate  = workerType{name: "logrotate", minDur: 1, maxDur: 10, errs: pbsErrs}
	pbsVerifySnap = workerType{name: "verify_snapshot", minDur: 10, maxDur: 600, errs: pbsErrs}
	// pbsBackground is a PBS server's daytime activity, with weights.
	pbsBackground = []struct {
		t      *workerType
		weight int
	}{{&pbsReader, 4}, {&pbsBackup, 3}, {&pbsPrune, 1}, {&pbsVerifySnap, 1}}
)

// typeNames interns every worker type name; a rec stores its index.
var (
	typeNames []string
	typeIndex = map[string]uint16{}
)

func init() {
	for _, t := range pveTypes {
		internType(t.name)
	}
	for _, t := range []workerType{pbsBackup, pbsReader, pbsPrune, pbsPruneJob, pbsSyncJob, pbsVerifyJob, pbsGC, pbsLogrotate, pbsVerifySnap} {
		internType(t.name)
	}
}

// internType adds a worker type name to the static table (init only).
func internType(name string) uint16 {
	if i, ok := typeIndex[name]; ok {
		return i
	}
	typeIndex[name] = uint16(len(typeNames))
	typeNames = append(typeNames, name)
	return uint16(len(typeNames) - 1)
}

// user is a user or API token that starts tasks, with its weight.
type user struct {
	name   string
	weight int
}

// Users of PVE and PBS tasks. API tokens are user@realm!name.
var (
	pveUsers = []user{
		{"root@pam", 60}, {"admin@pve", 8}, {"alice@pve", 4},
		{"root@pam!automation", 10}, {"ci@pve!deploy", 8}, {"monitoring@pve!pdm", 5},
	}
	pbsUsers = []user{{"root@pam", 70}, {"admin@pbs", 10}, {"sync@pbs!offsite", 20}}
)

// Indices into userNames for the special users.
const (
	userRoot  = 0   // root@pam, the jobs' user on both products
	userToken = 255 // the remote's own API token (tasks "we" started)
)

// userNames interns the users: PVE's first, then PBS's (root@pam shared),
// then the PBS backup clients' tokens.
var userNames, pbsUserIdx, pveUserIdx = func() ([]string, []uint8, []uint8) {
	names := []string{}
	index := map[string]uint8{}
	add := func(n string) uint8 {
		if i, ok := index[n]; ok {
			return i
		}
		index[n] = uint8(len(names))
		names = append(names, n)
		return uint8(len(names) - 1)
	}
	var pve, pbs []uint8
	for _, u := range pveUsers {
		pve = append(pve, add(u.name))
	}
	for _, u := range pbsUsers {
		pbs = append(pbs, add(u.name))
	}
	for i := range backupClients {
		add(backupClientUser(i))
	}
	return names, pbs, pve
}()

// backupClients is how many distinct PVE clusters back up to one PBS;
// each uses its own token, "backup@pbs!pve-N".
const backupClients = 4

func backupClientUser(i int) string { return "backup@pbs!pve-" + strconv.Itoa(i+1) }

func backupClientIdx(i int) uint8 {
	for j, n := range userNames {
		if n == backupClientUser(i) {
			return uint8(j)
		}
	}
	return userRoot
}

// pick returns an index drawn with the given weights.
func pick(rng *rand.Rand, weights func(i int) int, n int) int {
	total := 0
	for i := range n {
		total += weights(i)
	}
	x := rng.IntN(total)
	for i := range n {
		x -= weights(i)
		if x < 0 {
			return i
		}
	}
	return n - 1
}

// duration draws a task duration in whole seconds, log-uniform in
// [min, max], at least 1.
func duration(rng *rand.Rand, lo, hi float64) int64 {
	d := math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
	return max(1, int64(d))
}

// exitStatus draws an exit status: about 90% OK, 5.5% warnings, 4% one of
// the type's errors and 0.5% unknown.
func exitStatus(rng *rand.Rand, t workerType, pbs bool) uint16 {
	x := rng.IntN(1000)
	switch {
	case x < 900:
		return stOK
	case x < 955:
		// mostly a single warning
		n := 1 + int(rng.ExpFloat64()*0.8)
		return uint16(stWarn1 + min(n, maxWarnings) - 1)
	case x < 995 && len(t.errs) > 0:
		return uint16(t.errs[rng.IntN(len(t.errs))])
	case pbs:
		return stUnknownPBS
	default:
		return stUnknownPVE
	}
}

// hourWeight is the relative rate of background tasks per hour of the
// (UTC) day: quiet at night, busy during office hours. Normalised so the
// daily mean is 1.
var hourWeight = func() [24]float64 {
	raw := [24]float64{
		0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.8,
		1.6, 1.6, 1.6, 1.6, 1.6, 1.6, 1.6, 1.6,
		1.6, 1.6, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5,
	}
	sum := 0.0
	for _, w := range raw {
		sum += w
	}
	for i := range raw {
		raw[i] *= 24 / sum
	}
	return raw
}()
