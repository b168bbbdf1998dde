package cache

import (
	"bytes"
	"cmp"
	"strconv"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// rec is the compact in-memory form of a task (64 bytes): the UPID's numbers
// and interned codes of its strings. The UPID text is not stored when it is
// canonical (task.UPID.Canonical); a non-canonical UPID is kept whole in its
// segment's raws table and flagRaw is set.
type rec struct {
	start  int64  // UPID start time, Unix seconds
	end    int64  // end time; 0 while running
	pstart uint64 // UPID process start
	taskID uint64 // PBS task counter; 0 for PVE
	pid    uint32
	remote uint32 // codes into dict.remotes, dict.nodes, ...
	node   uint32
	typ    uint32
	id     uint32
	user   uint32
	status uint32
	flags  uint8 // flagPBS, flagRaw
}

const (
	flagPBS uint8 = 1 << iota // the UPID is a Proxmox Backup Server UPID
	flagRaw                   // the UPID text is not canonical: see segment.raws
)

// Status slots: the four status classes of a finished task, in
// task.StatusClass order, and one for running tasks.
const (
	slotRunning = 4
	nslots      = 5
)

// slot returns the status slot of r.
func (d *dict) slot(r *rec) int {
	if r.end == 0 {
		return slotRunning
	}
	return int(d.statusClass[r.status])
}

// pbsNodeKey is the node key of every PBS task for cutoffs and NodeResult,
// as Proxmox Datacenter Manager uses it.
const pbsNodeKey = "localhost"

// nodeKey returns the node a fetch of r's remote reports r under.
func (d *dict) nodeKey(r *rec) string {
	if r.flags&flagPBS != 0 {
		return pbsNodeKey
	}
	return d.nodes[r.node]
}

// toRec interns the strings of t into a rec. raw reports whether the UPID
// text must be kept (it is not canonical).
func (in *interner) toRec(t *task.Task) (r rec, raw bool) {
	return in.toRecOf(in.remote(t.Remote), t)
}

// toRecOf is toRec for a task whose remote's code is known.
func (in *interner) toRecOf(remote uint32, t *task.Task) (r rec, raw bool) {
	u := &t.UPID
	r = numbersOf(remote, t)
	r.node = in.node(u.Node)
	r.typ = in.typ(u.Type)
	r.id = in.id(u.ID)
	r.user = in.user(u.User)
	r.status = in.status(t.Status)
	if !u.Canonical() {
		r.flags |= flagRaw
		raw = true
	}
	return r, raw
}

// numbersOf is the rec of t without its strings: numbers, remote and the
// PBS flag.
func numbersOf(remote uint32, t *task.Task) rec {
	u := &t.UPID
	r := rec{start: u.StartTime, end: t.EndTime, pstart: u.PStart, taskID: u.TaskID, pid: u.PID, remote: remote}
	if u.Kind == task.PBS {
		r.flags |= flagPBS
	}
	return r
}

// checkRec is toRecOf for a new task, with the checks of validateTask
// (but the remote's): ok is false when the task fails them (validateTask
// then says why). It looks the strings up without adding them: known is
// false when one is not interned yet (the caller then interns the task
// with toRecOf once the whole batch has passed). Each string is checked
// once per kind of UPID (strtab.check); a parsed UPID is not checked
// (task.UPID.Validate).
func (in *interner) checkRec(remote uint32, t *task.Task) (r rec, raw, known, ok bool) {
	u := &t.UPID
	r = numbersOf(remote, t)
	var fn, ft, fi, fu, fs bool
	if u.Canonical() {
		if !u.ValidNumbers() {
			return r, false, false, false
		}
		var okn, okt, oki, oku bool
		r.node, fn, okn = in.nodes.check(u.Node, u.Kind, task.FieldNode)
		r.typ, ft, okt = in.types.check(u.Type, u.Kind, task.FieldType)
		r.id, fi, oki = in.ids.check(u.ID, u.Kind, task.FieldID)
		r.user, fu, oku = in.users.check(u.User, u.Kind, task.FieldUser)
		if !okn || !okt || !oki || !oku {
			return r, false, false, false
		}
	} else {
		r.flags |= flagRaw
		raw = true
		r.node, fn = in.nodes.find(u.Node)
		r.typ, ft = in.types.find(u.Type)
		r.id, fi = in.ids.find(u.ID)
		r.user, fu = in.users.find(u.User)
	}
	r.status, fs = in.statuses.find(t.Status)
	return r, raw, fn && ft && fi && fu && fs, true
}

// upid rebuilds the UPID of r from its fields (raw == nil) or returns the
// kept non-canonical UPID.
func (d *dict) upid(r *rec, raw *task.UPID) task.UPID {
	if raw != nil {
		return *raw
	}
	u := task.UPID{
		Kind:      task.PVE,
		Node:      d.nodes[r.node],
		PID:       r.pid,
		PStart:    r.pstart,
		TaskID:    r.taskID,
		StartTime: r.start,
		Type:      d.types[r.typ],
		ID:        d.ids[r.id],
		User:      d.users[r.user],
	}
	if r.flags&flagPBS != 0 {
		u.Kind = task.PBS
	}
	return u
}

// task returns r as a task.Task.
func (d *dict) task(r *rec, raw *task.UPID) task.Task {
	return task.Task{
		Remote:  d.remotes[r.remote],
		UPID:    d.upid(r, raw),
		EndTime: r.end,
		Status:  d.statuses[r.status],
	}
}

// appendUPID appends the UPID text of r, exactly as task.UPID.String renders
// it, without allocating.
func (d *dict) appendUPID(b []byte, r *rec, raw *task.UPID) []byte {
	if raw != nil {
		return append(b, raw.String()...)
	}
	b = append(b, "UPID:"...)
	b = append(b, d.nodes[r.node]...)
	b = append(b, ':')
	b = appendHex8(b, uint64(r.pid))
	b = append(b, ':')
	b = appendHex8(b, r.pstart)
	b = append(b, ':')
	pbs := r.flags&flagPBS != 0
	if pbs {
		b = appendHex8(b, r.taskID)
		b = append(b, ':')
	}
	b = appendHex8(b, uint64(r.start))
	b = append(b, ':')
	b = append(b, d.types[r.typ]...)
	b = append(b, ':')
	if pbs {
		b = append(b, d.idEscaped[r.id]...)
	} else {
		b = append(b, d.ids[r.id]...)
	}
	b = append(b, ':')
	b = append(b, d.users[r.user]...)
	return append(b, ':')
}

// appendHex8 appends v as upper-case hex with at least 8 digits.
func appendHex8(b []byte, v uint64) []byte {
	const digits = "0123456789ABCDEF"
	if v <= 0xFFFFFFFF { // exactly 8 digits: one append
		return append(b, digits[v>>28&0xF], digits[v>>24&0xF], digits[v>>20&0xF], digits[v>>16&0xF],
			digits[v>>12&0xF], digits[v>>8&0xF], digits[v>>4&0xF], digits[v&0xF])
	}
	var buf [16]byte
	i := len(buf)
	for v != 0 || i > len(buf)-8 {
		i--
		buf[i] = digits[v&0xF]
		v >>= 4
	}
	return append(b, buf[i:]...)
}

// appendDec appends v in decimal, as strconv.AppendInt(b, v, 10) does,
// with a short way for the 10-digit numbers of Unix times of this era.
func appendDec(b []byte, v int64) []byte {
	if v < 1_000_000_000 || v > 9_999_999_999 {
		return strconv.AppendInt(b, v, 10)
	}
	const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
		"8081828384858687888990919293949596979899"
	b = append(b, "0000000000"...)
	buf := b[len(b)-10:]
	u := uint64(v)
	for i := 8; i >= 0; i -= 2 {
		p := u % 100 * 2
		u /= 100
		buf[i], buf[i+1] = pairs[p], pairs[p+1]
	}
	return b
}

// cmp orders two recs like task.Compare: newest start first, then UPID text
// ascending, then remote ascending. The texts are only rendered on a tie.
func (d *dict) cmp(a *rec, ra *task.UPID, b *rec, rb *task.UPID) int {
	if a.start != b.start {
		if a.start > b.start {
			return -1
		}
		return 1
	}
	if ra == nil && rb == nil {
		if c, ok := d.cmpFields(a, b); ok {
			return c
		}
	}
	var bufA, bufB [160]byte
	ta := d.appendUPID(bufA[:0], a, ra)
	tb := d.appendUPID(bufB[:0], b, rb)
	if c := bytes.Compare(ta, tb); c != 0 {
		return c
	}
	return strings.Compare(d.remotes[a.remote], d.remotes[b.remote])
}

// cmpFields orders the UPID texts of two canonical recs of the same start
// time from their fields, where the first field that differs decides
// without rendering: the node (its text up to the ':' that ends it), the
// pid (always 8 digits) or the process start or PBS task id (when both
// have 8 digits). ok is false when the fields do not decide.
func (d *dict) cmpFields(a, b *rec) (c int, ok bool) {
	if a.flags != b.flags || a.start != b.start {
		return 0, false
	}
	const hex8 = 0xFFFFFFFF
	switch {
	case a.node != b.node:
		c = cmpField(d.nodes[a.node], d.nodes[b.node])
		return c, c != 0
	case a.pid != b.pid:
		return cmp.Compare(a.pid, b.pid), true
	case a.pstart != b.pstart:
		return cmp.Compare(a.pstart, b.pstart), max(a.pstart, b.pstart) <= hex8
	case a.taskID != b.taskID && a.flags&flagPBS != 0:
		return cmp.Compare(a.taskID, b.taskID), max(a.taskID, b.taskID) <= hex8
	}
	return 0, false
}

// cmpField compares a+":" with b+":" (0 when that does not decide: the
// two are equal, or the longer has a ':' where the shorter ends).
func cmpField(a, b string) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	switch {
	case len(a) < len(b):
		return cmp.Compare(':', b[n])
	case len(a) > len(b):
		return cmp.Compare(a[n], ':')
	}
	return 0
}

// sameTask reports whether a and b are the same task (same remote and UPID
// text), whatever their end time and status.
func sameTask(a *rec, ra *task.UPID, b *rec, rb *task.UPID) bool {
	if a.start != b.start || a.remote != b.remote || a.flags != b.flags {
		return false
	}
	if ra != nil || rb != nil {
		return ra != nil && rb != nil && ra.String() == rb.String()
	}
	return a.node == b.node && a.pid == b.pid && a.pstart == b.pstart &&
		a.taskID == b.taskID && a.typ == b.typ && a.id == b.id && a.user == b.user
}

// recKey identifies a task in maps (the active set).
type recKey struct {
	start          int64
	pstart, taskID uint64
	pid            uint32
	remote, node   uint32
	typ, id, user  uint32
	flags          uint8
	raw            string // non-canonical UPID text, or ""
}

func keyOf(r *rec, raw *task.UPID) recKey {
	k := recKey{
		start: r.start, pstart: r.pstart, taskID: r.taskID, pid: r.pid,
		remote: r.remote, node: r.node, typ: r.typ, id: r.id, user: r.user, flags: r.flags,
	}
	if raw != nil {
		k.raw = raw.String()
	}
	return k
}
