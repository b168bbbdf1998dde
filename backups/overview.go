package backups

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// Classes of a guest's or a job's last run: a task status class, or
// ClassNone for a guest without any backup taskfleet knows of.
const (
	ClassOK      = "ok"
	ClassWarning = "warning"
	ClassError   = "error"
	ClassUnknown = "unknown"
	ClassNone    = "none"
)

// Classes lists the classes, failing first (the overview's order).
var Classes = []string{ClassError, ClassUnknown, ClassNone, ClassWarning, ClassOK}

// ParseClass parses a class name, case-insensitively.
func ParseClass(s string) (string, bool) {
	for _, c := range Classes {
		if strings.EqualFold(s, c) {
			return c, true
		}
	}
	return "", false
}

func classRank(c string) int { return slices.Index(Classes, c) }

// GuestInfo is a guest of a PVE cluster's guest list (GET
// /cluster/resources?type=vm).
// Its fields are proxmox.Guest's, in the same order.
type GuestInfo struct {
	Type     string `json:"type"` // qemu or lxc
	Name     string `json:"name,omitempty"`
	Node     string `json:"node,omitempty"`
	VMID     uint32 `json:"vmid,string"` // 0: not a guest (ignored)
	Template bool   `json:"template,omitempty"`
}

// Guest is one row of the overview: a guest of a PVE cluster (by vmid),
// or a backup group of a PBS datastore.
type Guest struct {
	Remote    string `json:"remote"`
	Node      string `json:"node,omitempty"`      // PVE: where the guest is listed, else where its last backup ran
	VMID      string `json:"vmid"`                // PBS: the group's backup id (a vmid, or a host's name)
	Type      string `json:"type,omitempty"`      // qemu, lxc; PBS: vm, ct, host
	Name      string `json:"name,omitempty"`      // from the guest list
	Namespace string `json:"namespace,omitempty"` // PBS
	Template  bool   `json:"template,omitempty"`
	// Listed: the remote's last guest list has the guest (PVE).
	Listed bool `json:"listed"`

	// The last backup: of the tasks that backed the guest up, the one
	// that started last. Its times are the task's (a multi-guest job's,
	// not the guest's share of it).
	Class      string `json:"status"`                // task.ClassifyStatus of LastStatus; ClassNone without a backup
	LastStatus string `json:"last_status,omitempty"` // the guest's outcome: "OK", "WARNINGS: n", an error, "unknown"
	LastStart  int64  `json:"last_start,omitempty"`
	LastEnd    int64  `json:"last_end,omitempty"`
	LastUPID   string `json:"upid,omitempty"`    // the task the last backup was part of
	Storage    string `json:"storage,omitempty"` // the last backup's target storage (PVE, when its job's log shows it) or datastore (PBS)
	// The last successful backup (ok or warning), likewise.
	LastOKStart int64  `json:"last_ok_start,omitempty"`
	LastOK      int64  `json:"last_ok,omitempty"` // its end
	LastOKUPID  string `json:"last_ok_upid,omitempty"`
}

// IsPBS reports whether the row is a PBS backup group (type vm, ct or
// host) rather than a PVE guest.
func (g *Guest) IsPBS() bool { return g.Type == "vm" || g.Type == "ct" || g.Type == "host" }

// Current reports whether the guest exists as far as taskfleet knows: a
// PVE guest in its cluster's last guest list, or a PBS backup group. A
// PVE guest that is not (deleted, or its cluster's list not fetched yet)
// is still a row while its backups are in the cache.
func (g *Guest) Current() bool { return g.Listed || g.IsPBS() }

// Row is a Guest as a query answers it: with the age of its last good
// backup at the query's time.
type Row struct {
	Guest
	AgeSeconds int64 `json:"last_ok_age_s,omitempty"` // 0 when there is no good backup
}

// Job is the last run of one PBS datastore job (see PBSJob).
type Job struct {
	Remote     string `json:"remote"`
	Datastore  string `json:"datastore"`
	Type       string `json:"type"` // one of JobTypes
	ID         string `json:"id"`   // the worker id: the job's identity
	Class      string `json:"status"`
	Succeeded  bool   `json:"succeeded"` // by the type's rule (Succeeded)
	LastStatus string `json:"last_status"`
	LastStart  int64  `json:"last_start"`
	LastEnd    int64  `json:"last_end"`
	LastUPID   string `json:"upid"`
	WorkerType string `json:"worker_type"`
	LastOK     int64  `json:"last_ok,omitempty"` // end of the last successful run
	LastOKUPID string `json:"last_ok_upid,omitempty"`
}

// Input is what Build needs to know about one remote.
type Input struct {
	Remote string
	Kind   task.Kind
	// Guests is the remote's guest list (PVE); nil when it is not known
	// yet: then no guest is Listed.
	Guests []GuestInfo
	// Tasks are the remote's finished tasks: vzdump (PVE); backup and the
	// datastore jobs (PBS). Other and running tasks are ignored.
	Tasks []task.Task
	// Logs are the parsed logs of multi-guest vzdump tasks, by UPID.
	Logs map[task.UPID]*JobLog
}

// Part is one remote's share of an Overview.
//
// Its guest rows are kept compact, for a fleet of 10,000 clusters has
// millions of guests: a row is 32 bytes and points into the remote's guest
// list (Input.Guests, shared, not copied) and into a short table of the
// backup runs the rows show (a multi-guest job is one run for all its
// guests with the same outcome). A Guest is 216 bytes; Guests and the
// Overview's queries expand rows into Guests as they answer.
type Part struct {
	Remote string
	Jobs   []Job // sorted by datastore, JobTypes order, id
	// PendingLogs counts the finished multi-guest vzdump tasks whose log
	// is not parsed yet: their guests' outcomes are missing.
	PendingLogs int

	infos []GuestInfo // Input.Guests
	runs  []attempt
	rows  []row // by namespace, id (as compareVMID), type, storage
}

// row is a compact Guest (see Part).
type row struct {
	id         string // vmid, or a PBS group's backup id; "" when listed (Part.vmid)
	info       int32  // index into Part.infos; -1: not listed
	last, good int32  // index into Part.runs of the last and the last good backup; -1: none
}

// attempt is one guest's backup in one task; as a run of a Part, also
// its class.
type attempt struct {
	start, end int64
	status     string
	upid       string
	storage    string
	node       string
	typ        string // PVE: from a multi-guest job's log; PBS: the group's type
	ns         string // PBS: the group's namespace
	class      string // of status; set in the Part's runs only
}

func (a *attempt) after(b *attempt) bool {
	return a.start > b.start || a.start == b.start && (a.end > b.end || a.end == b.end && a.upid > b.upid)
}

// Build computes one remote's part from its tasks, guest list and logs.
// The part keeps in.Guests: the caller must not change it afterwards.
func Build(in Input) Part {
	p := Part{Remote: in.Remote}
	type key struct{ ns, typ, id, store string }
	type found struct {
		info       int32
		last, good *attempt
	}
	rows := map[key]*found{}
	note := func(k key, a attempt) {
		f := rows[k]
		if f == nil {
			f = &found{info: -1}
			rows[k] = f
		}
		if f.last == nil || a.after(f.last) {
			f.last = &a
		}
		if Succeeded(jobBackup, a.status) && (f.good == nil || a.after(f.good)) {
			f.good = &a
		}
	}
	jobs := map[[2]string]*Job{} // by worker type and id
	jobOK := map[[2]string]*attempt{}
	for i := range in.Tasks {
		t := &in.Tasks[i]
		if t.Running() {
			continue
		}
		u := t.UPID
		switch {
		case in.Kind == task.PVE && u.Type == "vzdump" && u.ID != "":
			if !validVMID(u.ID) {
				continue
			}
			note(key{id: u.ID}, attempt{start: u.StartTime, end: t.EndTime, status: t.Status, upid: u.String(), node: u.Node})
		case in.Kind == task.PVE && u.Type == "vzdump":
			j := in.Logs[u]
			if j == nil {
				p.PendingLogs++
				continue
			}
			upid := u.String() // one string for all the job's guests
			for _, g := range j.Guests {
				note(key{id: g.VMID}, attempt{start: u.StartTime, end: t.EndTime, upid: upid, storage: j.Storage, node: u.Node, typ: g.Type, status: g.Status()})
			}
		case in.Kind == task.PBS && u.Type == "backup":
			g, err := ParseBackupWorkerID(u.ID)
			if err != nil {
				continue
			}
			storage := g.Store
			if g.Namespace != "" {
				storage += ":" + g.Namespace
			}
			note(key{ns: g.Namespace, typ: g.Type, id: g.ID, store: g.Store},
				attempt{start: u.StartTime, end: t.EndTime, status: t.Status, upid: u.String(), storage: storage, node: u.Node, typ: g.Type, ns: g.Namespace})
		case in.Kind == task.PBS:
			typ, store, ok := PBSJob(u)
			if !ok {
				continue
			}
			k := [2]string{u.Type, u.ID}
			j := jobs[k]
			if j == nil {
				j = &Job{Remote: in.Remote, Datastore: store, Type: typ, ID: u.ID, WorkerType: u.Type}
				jobs[k] = j
			}
			a := attempt{start: u.StartTime, end: t.EndTime, upid: u.String()}
			if j.LastUPID == "" || a.after(&attempt{start: j.LastStart, end: j.LastEnd, upid: j.LastUPID}) {
				j.LastStart, j.LastEnd, j.LastUPID, j.LastStatus = a.start, a.end, a.upid, t.Status
				j.Class, j.Succeeded = task.ClassifyStatus(t.Status).String(), Succeeded(typ, t.Status)
			}
			if l := jobOK[k]; Succeeded(typ, t.Status) && (l == nil || a.after(l)) {
				jobOK[k] = &a
			}
		}
	}
	if in.Kind == task.PVE {
		p.infos = in.Guests
		for i, gi := range in.Guests {
			if gi.VMID == 0 {
				continue
			}
			k := key{id: strconv.FormatUint(uint64(gi.VMID), 10)}
			if rows[k] == nil {
				rows[k] = &found{}
			}
			rows[k].info = int32(i)
		}
	}
	runs := map[attempt]int32{}
	run := func(a *attempt) int32 {
		if a == nil {
			return -1
		}
		i, ok := runs[*a]
		if !ok {
			i = int32(len(p.runs))
			runs[*a] = i
			r := *a
			r.class = task.ClassifyStatus(a.status).String()
			p.runs = append(p.runs, r)
		}
		return i
	}
	p.rows = make([]row, 0, len(rows))
	for k, f := range rows {
		p.rows = append(p.rows, row{id: k.id, info: f.info, last: run(f.last), good: run(f.good)})
	}
	slices.SortFunc(p.rows, p.compareRows)
	for i := range p.rows {
		if p.rows[i].info >= 0 {
			p.rows[i].id = "" // its info's VMID: a listed guest's row keeps no string
		}
	}
	for k, j := range jobs {
		if a := jobOK[k]; a != nil {
			j.LastOK, j.LastOKUPID = a.end, a.upid
		}
		p.Jobs = append(p.Jobs, *j)
	}
	slices.SortFunc(p.Jobs, func(a, b Job) int {
		return cmp.Or(cmp.Compare(a.Datastore, b.Datastore), cmp.Compare(slices.Index(JobTypes, a.Type), slices.Index(JobTypes, b.Type)), cmp.Compare(a.ID, b.ID))
	})
	return p
}

// lastRun returns r's last backup, or nil.
func (p *Part) lastRun(r *row) *attempt {
	if r.last < 0 {
		return nil
	}
	return &p.runs[r.last]
}

// class returns the class of r's last backup, ClassNone without one.
func (p *Part) class(r *row) string {
	if a := p.lastRun(r); a != nil {
		return a.class
	}
	return ClassNone
}

// lastOK returns the end of r's last good backup, 0 without one.
func (p *Part) lastOK(r *row) int64 {
	if r.good < 0 {
		return 0
	}
	return p.runs[r.good].end
}

// compareRows orders rows by namespace, id (as compareVMID), type and
// storage.
func (p *Part) compareRows(a, b row) int {
	ns := func(r *row) string {
		if l := p.lastRun(r); l != nil {
			return l.ns
		}
		return ""
	}
	storage := func(r *row) string {
		if l := p.lastRun(r); l != nil {
			return l.storage
		}
		return ""
	}
	return cmp.Or(cmp.Compare(ns(&a), ns(&b)), compareVMID(a.id, b.id),
		cmp.Compare(p.guestType(&a), p.guestType(&b)), cmp.Compare(storage(&a), storage(&b)))
}

// guestType is r's Guest.Type.
func (p *Part) guestType(r *row) string {
	if r.info >= 0 {
		return p.infos[r.info].Type
	}
	if l := p.lastRun(r); l != nil {
		return l.typ
	}
	return ""
}

// vmid is r's Guest.VMID.
func (p *Part) vmid(r *row) string {
	if r.info >= 0 {
		return strconv.FormatUint(uint64(p.infos[r.info].VMID), 10)
	}
	return r.id
}

// guest expands r.
func (p *Part) guest(r *row) Guest {
	g := Guest{Remote: p.Remote, VMID: p.vmid(r), Class: ClassNone, Type: p.guestType(r)}
	if r.info >= 0 {
		gi := &p.infos[r.info]
		g.Listed, g.Node, g.Name, g.Template = true, gi.Node, gi.Name, gi.Template
	}
	if a := p.lastRun(r); a != nil {
		g.Class, g.LastStatus, g.LastStart, g.LastEnd, g.LastUPID, g.Storage, g.Namespace = a.class, a.status, a.start, a.end, a.upid, a.storage, a.ns
		if g.Node == "" {
			g.Node = a.node
		}
	}
	if r.good >= 0 {
		a := &p.runs[r.good]
		g.LastOKStart, g.LastOK, g.LastOKUPID = a.start, a.end, a.upid
	}
	return g
}

// Guests returns the part's guest rows, sorted by vmid, in a new slice.
func (p *Part) Guests() []Guest {
	out := make([]Guest, len(p.rows))
	for i := range p.rows {
		out[i] = p.guest(&p.rows[i])
	}
	return out
}

func compareVMID(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
}

// Overview is the fleet's backup overview at one time. It is immutable:
// share it freely, never modify what its methods return.
type Overview struct {
	built   time.Time
	parts   []Part // by remote
	pending map[string]int
}

// New assembles an Overview from the remotes' parts. It keeps parts (sorted
// by remote in place) and does not copy their rows: assembling costs the
// number of remotes, not of guests, so the keeper can publish after every
// round. The caller must not change parts or their rows afterwards.
func New(built time.Time, parts ...Part) *Overview {
	o := &Overview{built: built, parts: parts, pending: map[string]int{}}
	slices.SortFunc(parts, func(a, b Part) int { return cmp.Compare(a.Remote, b.Remote) })
	for _, p := range parts {
		if p.PendingLogs > 0 {
			o.pending[p.Remote] = p.PendingLogs
		}
	}
	return o
}

// Built is when the overview was computed.
func (o *Overview) Built() time.Time { return o.built }

// All returns every guest row, by remote and vmid, in a new slice.
func (o *Overview) All() []Guest {
	var out []Guest
	for i := range o.parts {
		out = append(out, o.parts[i].Guests()...)
	}
	return out
}

// AllJobs returns every PBS job row, by remote, datastore and type, in a
// new slice.
func (o *Overview) AllJobs() []Job {
	var out []Job
	for _, p := range o.parts {
		out = append(out, p.Jobs...)
	}
	return out
}

// selected returns the parts q may select: one when q names a remote.
func (o *Overview) selected(q Query) []Part {
	if q.Remote == "" {
		return o.parts
	}
	i, ok := slices.BinarySearchFunc(o.parts, q.Remote, func(p Part, r string) int { return cmp.Compare(p.Remote, r) })
	if !ok {
		return nil
	}
	return o.parts[i : i+1]
}

// PendingLogs returns, per remote, how many multi-guest vzdump jobs'
// logs are not parsed yet.
func (o *Overview) PendingLogs() map[string]int { return o.pending }

// Query selects overview rows. The zero value selects all.
type Query struct {
	Remote string          // only this remote; "": all
	Scope  map[string]bool // when not nil, only these remotes (a scoped token)
	// Classes: only rows whose last run is of one of these classes
	// (Classes' names); empty: any.
	Classes []string
	// OlderThan, when > 0: only guests whose last good backup ended more
	// than OlderThan before the query's time, or that have none. Jobs
	// likewise by their last successful run.
	OlderThan time.Duration
}

// Validate checks q's class names.
func (q *Query) Validate() error {
	for _, c := range q.Classes {
		if _, ok := ParseClass(c); !ok {
			return fmt.Errorf("status class %q: want one of %s", c, strings.Join(Classes, ", "))
		}
	}
	if q.OlderThan < 0 {
		return fmt.Errorf("older_than %v: must not be negative", q.OlderThan)
	}
	return nil
}

func (q *Query) remoteOK(r string) bool {
	return (q.Remote == "" || q.Remote == r) && (q.Scope == nil || q.Scope[r])
}

func (q *Query) classOK(c string) bool {
	return len(q.Classes) == 0 || slices.ContainsFunc(q.Classes, func(x string) bool { return strings.EqualFold(x, c) })
}

func (q *Query) stale(lastOK int64, now time.Time) bool {
	return q.OlderThan <= 0 || lastOK == 0 || now.Sub(time.Unix(lastOK, 0)) > q.OlderThan
}

// Guests returns the guest rows q selects, failing and stale first: by
// class (error, unknown, none, warning, ok), then oldest good backup
// first, then remote and vmid. Ages are as of now.
func (o *Overview) Guests(q Query, now time.Time) []Row {
	var out []Row
	for _, p := range o.selected(q) {
		if !q.remoteOK(p.Remote) {
			continue
		}
		for i := range p.rows {
			r := &p.rows[i]
			lastOK := p.lastOK(r)
			if !q.classOK(p.class(r)) || !q.stale(lastOK, now) {
				continue
			}
			row := Row{Guest: p.guest(r)}
			if lastOK != 0 {
				row.AgeSeconds = max(0, now.Unix()-lastOK)
			}
			out = append(out, row)
		}
	}
	slices.SortStableFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(classRank(a.Class), classRank(b.Class)), cmp.Compare(a.LastOK, b.LastOK))
	})
	return out
}

// Jobs returns the PBS job rows q selects: those whose last run did not
// succeed first, then by class and oldest success.
func (o *Overview) Jobs(q Query, now time.Time) []Job {
	var out []Job
	for _, p := range o.selected(q) {
		for _, j := range p.Jobs {
			if !q.remoteOK(j.Remote) || !q.classOK(j.Class) || !q.stale(j.LastOK, now) {
				continue
			}
			out = append(out, j)
		}
	}
	slices.SortStableFunc(out, func(a, b Job) int {
		return cmp.Or(compareBool(a.Succeeded, b.Succeeded), cmp.Compare(classRank(a.Class), classRank(b.Class)), cmp.Compare(a.LastOK, b.LastOK))
	})
	return out
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
