package sim

import (
	"math"
	"slices"
	"sync"

	"github.com/taskfleet/taskfleet/task"
)

// rec is one task, compactly: 24 bytes. Node, pstart, the PBS pid and
// task id are derived from the node's profile.
type rec struct {
	start  uint32 // Unix seconds
	dur    uint32 // seconds; the task runs until start+dur
	seq    uint32 // PVE: the pid; PBS: the task's number within its day
	id     uint32 // index into the activity's id table
	typ    uint16 // index into typeNames, or customType+i
	status uint8  // index into statuses (when finished)
	user   uint8  // index into userNames, or userToken
	jitter uint8  // PVE: sub-second clock ticks of pstart
}

func (r *rec) end() int64 { return int64(r.start) + int64(r.dur) }

// endStamp is r's end as the remote's clock wrote it.
func (a *activity) endStamp(r *rec) int64 { return a.clock.stamp(r.end()) }

// customType is the first type index of worker types StartTask introduced.
const customType = 1 << 15

// activity is the task history of one node: what it runs now and the
// finished tasks it still holds, generated lazily up to the fleet's
// clock. It is safe for concurrent use.
type activity struct {
	p         *profile
	clock     *clock // the remote's clock: times are written with it
	indexSize int
	token     string // the remote's API token id: the user of StartTask's tasks

	mu       sync.Mutex
	from     int64 // no task starts before this
	until    int64 // no task starts after this (the node was removed); MaxInt64 while it exists
	frontier int64 // every task that started at or before frontier has been taken from pending
	nextDay  int64 // the next day to generate
	pending  []rec // generated tasks that have not started yet, by start
	running  []rec // started and not finished, by start
	index    ring  // finished tasks the node still holds, by end
	started  []rec // tasks StartTask added, kept for the ground truth

	// version counts the changes of running and index: an answer built
	// at one version is valid as long as the version stays (listCache).
	version   uint64
	listCache cachedReply // the last task list answered, for repeated queries
	// clusterPart is the node's broadcast list for /cluster/tasks as of
	// clusterVer (JSON items, comma-separated).
	clusterPart []byte
	clusterVer  uint64

	ids         []string // id table: rec.id indexes it
	idIndex     map[string]uint32
	customTypes []string
	startCount  uint32 // StartTask's tasks so far
}

func newActivity(p *profile, token string, from int64, indexSize int) *activity {
	a := &activity{
		p: p, indexSize: indexSize, token: token,
		from: from, until: math.MaxInt64, frontier: from - 1,
		nextDay: floorDiv(from, day),
		idIndex: map[string]uint32{},
	}
	a.intern("")
	return a
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// intern returns the id table index of s; the caller holds mu.
func (a *activity) intern(s string) uint32 {
	if i, ok := a.idIndex[s]; ok {
		return i
	}
	i := uint32(len(a.ids))
	a.ids = append(a.ids, s)
	a.idIndex[s] = i
	return i
}

// day returns the stored tasks of day d that fall in [from, until], by
// start, with their sequence numbers; the caller holds mu.
func (a *activity) day(d int64) []rec {
	gens := a.p.generate(d)
	recs := make([]rec, 0, len(gens))
	rng := a.p.dayRand(^d) // pids and clock ticks: a stream of their own
	pid := uint32(pidFirst + rng.IntN(3_000_000))
	gap := min(200, 1_000_000/(len(gens)+1)+1) // pids stay below pidStarted
	for i, g := range gens {
		pid += 1 + uint32(rng.IntN(gap))
		r := rec{
			start: uint32(g.start), dur: uint32(g.dur), seq: pid,
			typ: g.typ, status: uint8(g.status), user: g.user,
			jitter: uint8(rng.IntN(100)),
		}
		if a.p.kind == task.PBS {
			r.seq = uint32(i)
		}
		if g.start < a.from || g.start > a.until {
			continue
		}
		r.id = a.intern(g.id)
		recs = append(recs, r)
	}
	return recs
}

// advance brings the node to time now: starts the tasks due and settles
// the finished ones. Time never goes back.
func (a *activity) advance(now int64) {
	now = min(now, a.until)
	if now <= a.frontier {
		return
	}
	for {
		if len(a.pending) == 0 {
			if a.nextDay*day > now {
				break
			}
			// Settle up to the new day first, so that catching up on days
			// of activity never holds more than a day of it in running.
			a.settle(a.nextDay * day)
			a.pending = a.day(a.nextDay)
			a.nextDay++
			continue
		}
		if int64(a.pending[0].start) > now {
			break
		}
		a.running = append(a.running, a.pending[0])
		a.pending = a.pending[1:]
		a.version++
	}
	a.frontier = now
	a.settle(now)
}

// settle moves the tasks that finished by now from running to the index,
// in the order they finished.
func (a *activity) settle(now int64) {
	var done []rec
	keep := a.running[:0]
	for _, r := range a.running {
		if r.end() <= now {
			done = append(done, r)
		} else {
			keep = append(keep, r)
		}
	}
	clear(a.running[len(keep):])
	a.running = keep
	if cap(a.running) > 256 && cap(a.running) > 4*len(a.running) {
		a.running = slices.Clip(slices.Clone(a.running))
	}
	slices.SortStableFunc(done, func(x, y rec) int {
		if x.end() != y.end() {
			return int(x.end() - y.end())
		}
		return int(x.start) - int(y.start)
	})
	for _, r := range done {
		a.index.push(r, a.indexSize)
	}
	if len(done) > 0 {
		a.version++
	}
}

// add starts a task now (StartTask); the caller advanced to now.
func (a *activity) add(typ, id string, userIdx uint8, now, dur int64) rec {
	ti, ok := typeIndex[typ]
	if !ok {
		k := slices.Index(a.customTypes, typ)
		if k < 0 {
			k = len(a.customTypes)
			a.customTypes = append(a.customTypes, typ)
		}
		ti = uint16(customType + k)
	}
	r := rec{start: uint32(now), dur: uint32(max(dur, 1)), typ: ti, user: userIdx, id: a.intern(id), status: stOK}
	if a.p.kind == task.PBS {
		r.seq = seqStarted + a.startCount%(pbsPerDay-seqStarted)
	} else {
		r.seq = pidStarted + a.startCount%(pidMax-pidStarted)
	}
	a.startCount++
	a.version++
	a.running = append(a.running, r)
	a.started = append(a.started, r)
	return r
}

// history returns every task that started up to the frontier, by start;
// the caller holds mu.
func (a *activity) history() []rec {
	var out []rec
	for d := floorDiv(a.from, day); d*day <= a.frontier; d++ {
		for _, r := range a.day(d) {
			if int64(r.start) <= a.frontier {
				out = append(out, r)
			}
		}
	}
	out = append(out, a.started...)
	slices.SortStableFunc(out, func(x, y rec) int { return int(x.start) - int(y.start) })
	return out
}

// find returns the task with the given UPID, held or not; the caller
// holds mu and advanced the activity.
func (a *activity) find(u task.UPID) (rec, bool) {
	match := func(r *rec) bool { return a.upid(r) == u }
	for i := range a.running {
		if match(&a.running[i]) {
			return a.running[i], true
		}
	}
	for i := range a.started {
		if match(&a.started[i]) {
			return a.started[i], true
		}
	}
	// The UPID carries the start as the remote's clock wrote it: try the
	// fleet times each offset of the clock maps to it.
	for _, off := range a.clock.offsets() {
		t := u.StartTime - off
		if t < a.from || t > a.frontier {
			continue
		}
		for _, r := range a.day(floorDiv(t, day)) {
			if match(&r) {
				return r, true
			}
		}
	}
	return rec{}, false
}

// typeName returns the worker type of r.
func (a *activity) typeName(r *rec) string {
	if r.typ >= customType {
		return a.customTypes[r.typ-customType]
	}
	return typeNames[r.typ]
}

// userName returns the user (or API token) that started r.
func (a *activity) userName(r *rec) string {
	if r.user == userToken {
		return a.token
	}
	return userNames[r.user]
}

// upid returns the UPID of r.
func (a *activity) upid(r *rec) task.UPID {
	u := task.UPID{
		Kind: a.p.kind, Node: a.p.node,
		StartTime: a.clock.stamp(int64(r.start)), Type: a.typeName(r), ID: a.ids[r.id],
		User: a.userName(r),
	}
	boot := a.p.boot(int64(r.start))
	if a.p.kind == task.PBS {
		// All PBS tasks run in the proxy daemon: its pid and start time,
		// and a counter of the tasks it started.
		bootNo := uint64(floorDiv(boot, bootPeriod))
		u.PID = uint32(500 + (bootNo*7919+a.p.seed)%3000)
		u.PStart = 1500 + (bootNo*104729+a.p.seed)%30000
		u.TaskID = uint64((int64(r.start)-boot)/day)*pbsPerDay + uint64(r.seq)
	} else {
		u.PID = r.seq
		u.PStart = uint64(int64(r.start)-boot)*100 + uint64(r.jitter)
	}
	return u
}

// ring holds the most recent finished tasks, up to a capacity: the
// node's task index. Oldest fall off.
type ring struct {
	buf  []rec
	head int // position of the oldest when full
}

// push appends r, dropping the oldest when size tasks are held.
func (g *ring) push(r rec, size int) {
	if len(g.buf) < size {
		if len(g.buf) == cap(g.buf) {
			g.buf = slices.Grow(g.buf, min(size, max(64, 2*len(g.buf)))-len(g.buf))
		}
		g.buf = append(g.buf, r)
		return
	}
	g.buf[g.head] = r
	g.head = (g.head + 1) % len(g.buf)
}

// len returns the number of tasks held.
func (g *ring) len() int { return len(g.buf) }

// newest returns the k-th most recently finished task (k = 0 is the newest).
func (g *ring) newest(k int) *rec {
	n := len(g.buf)
	return &g.buf[(g.head+n-1-k)%n]
}
