package cache

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/task"
)

// TestDiskFaults runs a Writer on an in-memory disk through each disk fault
// (one row each) and checks, while the fault lasts, that the failed change
// is reported with its kind and not made, that queries keep being answered
// from the last snapshot and that cutoffs do not advance; that reopening
// fails the same way and leaves the snapshot alone; and, once the disk is
// back, that the change goes through and survives a power loss with
// nothing lost. The actors' TestWriterDiskFaults runs the same faults
// through the whole system.
func TestDiskFaults(t *testing.T) {
	rows := []struct {
		fault      DiskFault
		kind       string // DiskErrorKind of the failed Apply; "" for none
		failsWrite bool   // the Writer refuses writes until reopened
	}{
		{fault: FaultNoSpace, kind: DiskNoSpace},
		{fault: FaultIO, kind: DiskIO, failsWrite: true},
		{fault: FaultReadOnly, kind: DiskReadOnly, failsWrite: true},
		{fault: FaultSlowSync},
	}
	for _, row := range rows {
		t.Run(row.fault.String(), func(t *testing.T) {
			testDiskFault(t, row.fault, row.kind, row.failsWrite)
		})
	}
}

func testDiskFault(t *testing.T, fault DiskFault, kind string, failsWrite bool) {
	mem := newMemFS("/cache")
	faults := &Faults{}
	// Real time: a zstd decoder made in a synctest bubble would go to the
	// package's pool and break every later test. 1.1 s is over the
	// threshold however loaded the machine is.
	faults.SetSlowSync(SlowSyncThreshold + 100*time.Millisecond)
	clock := newClock(t0 + 2*3600)
	var logs bytes.Buffer
	latest := &Latest{}
	opts := Options{Dir: "/cache", Now: clock.Now, Rotation: time.Hour, Retention: 4, PlainFiles: 2,
		Latest: latest, Faults: faults, Logger: zerolog.New(&logs), fs: mem}
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Close() }()

	nodes := []NodeResult{{Node: "n1", OK: true}}
	a := Batch{Remote: "r1", Nodes: nodes, Tasks: []task.Task{
		pveTask("r1", "n1", 1, t0+3600, "vzdump", "100", "root@pam", t0+3660, "OK"),
		pveTask("r1", "n1", 2, t0+3700, "qmstart", "101", "root@pam", t0+3701, "OK"),
	}}
	b := Batch{Remote: "r1", Nodes: nodes, Tasks: []task.Task{
		pveTask("r1", "n1", 3, t0+5000, "vzdump", "102", "root@pam", t0+5100, "OK"),
		pveTask("r1", "n1", 4, t0+5200, "qmstart", "103", "root@pam", 0, ""),
	}}
	if err := w.Apply(a); err != nil {
		t.Fatal(err)
	}
	before := latest.Load()
	cutoff, _ := before.Cutoff("r1", "n1")

	faults.Set(fault)
	err = w.Apply(b)
	if got := DiskErrorKind(err); got != kind {
		t.Fatalf("Apply during %s: %v (kind %q), want kind %q", fault, err, got, kind)
	}
	if kind == "" {
		// A slow disk is slow, not failed: the batch is durable, and the
		// slow fsync is logged with its duration.
		faults.Set(FaultNone)
		if st := w.Stats(); st.SlowSyncs != 1 {
			t.Fatalf("%d slow fsyncs counted, want 1; log:\n%s", st.SlowSyncs, logs.String())
		}
		if d := slowSyncLogged(t, logs.String()); d < float64(SlowSyncThreshold.Milliseconds()) {
			t.Fatalf("slow fsync logged with duration_ms %v, want at least %d", d, SlowSyncThreshold.Milliseconds())
		}
	} else {
		if got := errors.Is(err, ErrFailed); got != failsWrite {
			t.Fatalf("Apply during %s: %v; refuses writes: %v, want %v", fault, err, got, failsWrite)
		}
		// Queries are answered from memory; the cutoff stays.
		if latest.Load() != before {
			t.Fatal("a failed Apply published a snapshot")
		}
		if got := all(latest.Load()); len(got) != len(a.Tasks) {
			t.Fatalf("query during %s: %d tasks, want %d", fault, len(got), len(a.Tasks))
		}
		if c, _ := latest.Load().Cutoff("r1", "n1"); c != cutoff {
			t.Fatalf("cutoff advanced to %d during %s, want %d", c, fault, cutoff)
		}
		// What supervision does, while the fault lasts: reopening fails
		// the same way and leaves the readers' snapshot alone.
		if err := w.Abandon(); err != nil {
			t.Fatal(err)
		}
		w2, err := Open(opts)
		if got := DiskErrorKind(err); got != kind {
			if err == nil {
				w2.Close()
			}
			t.Fatalf("Open during %s: %v (kind %q), want kind %q", fault, err, got, kind)
		}
		if latest.Load() != before {
			t.Fatal("a failed Open published a snapshot")
		}
		// The disk is back: reopen and apply again.
		faults.Set(FaultNone)
		if w, err = Open(opts); err != nil {
			t.Fatalf("Open after %s: %v", fault, err)
		}
		if err := w.Apply(b); err != nil {
			t.Fatalf("Apply after %s: %v", fault, err)
		}
		if faults.Count(fault) == 0 {
			t.Fatalf("no %s injected", fault)
		}
	}
	want := append(slices.Clone(a.Tasks), b.Tasks...)
	checkHolds(t, "after "+fault.String(), latest.Load(), want)
	if c, _ := latest.Load().Cutoff("r1", "n1"); c <= cutoff {
		t.Fatalf("cutoff %d did not advance past %d once the disk was back", c, cutoff)
	}
	// Nothing acknowledged is lost by a power loss now.
	after := mem.crashState(false, false)
	w3, err := Open(Options{Dir: "/cache", Now: clock.Now, Rotation: time.Hour, Retention: 4, PlainFiles: 2, fs: after})
	if err != nil {
		t.Fatalf("reopen after power loss: %v", err)
	}
	defer w3.Close()
	checkHolds(t, "after power loss", w3.Latest().Load(), want)
	if cs := w3.Corruptions(); len(cs) > 0 {
		t.Fatalf("reopen after %s found damage: %v", fault, cs[0])
	}
}

// slowSyncLogged returns the duration_ms of the one "slow fdatasync" line
// of a JSON log.
func slowSyncLogged(t *testing.T, log string) float64 {
	t.Helper()
	var found []float64
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e struct {
			Message    string   `json:"message"`
			File       string   `json:"file"`
			DurationMS *float64 `json:"duration_ms"`
		}
		if err := jsonUnmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e.Message == "slow fdatasync" {
			if e.DurationMS == nil || e.File != JournalFile {
				t.Fatalf("slow fsync logged without duration_ms or file: %s", line)
			}
			found = append(found, *e.DurationMS)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d slow fsyncs logged, want 1; log:\n%s", len(found), log)
	}
	return found[0]
}

// checkHolds fails unless s holds exactly the tasks of want.
func checkHolds(t *testing.T, what string, s *Snapshot, want []task.Task) {
	t.Helper()
	var got, exp []string
	for _, tk := range all(s) {
		got = append(got, ident(tk))
	}
	for _, tk := range want {
		exp = append(exp, ident(tk))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Fatalf("%s: cache holds\n%v\nwant\n%v", what, got, exp)
	}
}

func TestDiskErrorKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("node result without node name"), ""},
		{ErrClosed, ""},
		{&LockedError{Dir: "/x", PID: 3}, ""},
		{ErrFailed, DiskOther},
		{fmt.Errorf("append journal: %w", &fs.PathError{Op: "write", Path: "/c/journal", Err: syscall.ENOSPC}), DiskNoSpace},
		{fmt.Errorf("%w: %w", ErrFailed, &fs.PathError{Op: "sync", Path: "/c/journal", Err: syscall.EIO}), DiskIO},
		{&fs.PathError{Op: "open", Path: "/c/lock", Err: syscall.EROFS}, DiskReadOnly},
		{&fs.PathError{Op: "open", Path: "/c/lock", Err: syscall.EACCES}, DiskOther},
	} {
		if got := DiskErrorKind(c.err); got != c.want {
			t.Errorf("DiskErrorKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
