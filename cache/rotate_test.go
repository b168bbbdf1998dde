package cache

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// archiveFiles lists the archive files of dir by period.
func archiveFiles(t *testing.T, dir string) (plain, zst []int64, other []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p, z, ok := parseArchiveName(e.Name())
		switch {
		case !ok:
			other = append(other, e.Name())
		case z:
			zst = append(zst, p)
		default:
			plain = append(plain, p)
		}
	}
	slices.Sort(plain)
	slices.Sort(zst)
	return plain, zst, other
}

// TestThirtyDays runs 30 simulated days (and a two-day downtime) through a
// cache with daily rotation and checks after every day: exactly Retention
// archive files, one per consecutive day ending today, the newest
// PlainFiles plain and the others compressed, every task inside the
// retention present (in its file too), nothing older.
func TestThirtyDays(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const day = 24 * 3600
	start := int64(1_700_006_400) // a midnight
	clock := newClock(start + 3600)
	opts := func(o *Options) { o.Rotation, o.Retention, o.PlainFiles = 24*time.Hour, 7, 2 }
	w := openTest(t, dir, clock, opts)
	defer func() { w.Close() }()
	var sent []task.Task
	pid := uint32(0)
	rotations := int64(0)
	for d := 0; d < 30; d++ {
		if d == 15 { // down for two days; the restart rotates
			rotations += w.Stats().Rotations
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * day)
			w = openTest(t, dir, clock, opts)
			d += 2
		}
		for h := 0; h < 24; h += 4 {
			now := clock.Unix()
			var tasks []task.Task
			for i := range 6 {
				pid++
				st := now - int64(i)*500
				tasks = append(tasks, pveTask("east", "n1", pid, st, "vzdump", "101", "root@pam", st+30, "OK"))
			}
			if err := w.Apply(Batch{Remote: "east", Tasks: tasks, Nodes: []NodeResult{{Node: "n1", OK: true}}}); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, tasks...)
			if _, err := w.MaybeRotate(); err != nil {
				t.Fatal(err)
			}
			if h%8 == 0 {
				if err := w.ApplyJournal(); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(4 * time.Hour)
		}
		if _, err := w.MaybeRotate(); err != nil {
			t.Fatal(err)
		}
		if d%5 == 4 {
			rotations += w.Stats().Rotations
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w = openTest(t, dir, clock, opts)
		}
		checkDay(t, dir, w, clock.Unix(), sent)
	}
	// One rotation per day; the restart after the downtime does one for
	// the three days.
	if got := rotations + w.Stats().Rotations; got != 30-2 {
		t.Fatalf("%d rotations, want 28", got)
	}
}

func checkDay(t *testing.T, dir string, w *Writer, now int64, sent []task.Task) {
	t.Helper()
	const day = 24 * 3600
	today := now - now%day
	plain, zst, other := archiveFiles(t, dir)
	var wantZst []int64
	for i := 6; i >= 2; i-- {
		wantZst = append(wantZst, today-int64(i)*day)
	}
	wantPlain := []int64{today - day, today}
	if !slices.Equal(plain, wantPlain) || !slices.Equal(zst, wantZst) {
		t.Fatalf("day %d: plain files %v, zst files %v; want %v and %v", today/day, plain, zst, wantPlain, wantZst)
	}
	for _, n := range other {
		if n != JournalFile && n != StateFile && n != LockFile {
			t.Fatalf("unexpected file %s", n)
		}
	}
	oldest := today - 6*day
	var want []task.Task
	for _, tk := range sent {
		if tk.UPID.StartTime >= oldest {
			want = append(want, tk)
		}
	}
	s := w.Latest().Load()
	got := all(s)
	if ref := reference(want, task.Filter{}); !slices.Equal(got, ref.Tasks) {
		t.Fatalf("day %d: cache holds %d tasks, want %d (tasks since %d)", today/day, len(got), len(ref.Tasks), oldest)
	}
	// Each compressed file decodes to its period's tasks.
	for _, p := range zst {
		content := readZst(t, filepath.Join(dir, archiveName(p, true)))
		n := 0
		if ce := scanLines("", content, true, func(*task.Task) { n++ }); ce != nil {
			t.Fatal(ce)
		}
		if wantN := s.Query(task.Filter{Since: p, Until: p + day - 1}).Total; n != wantN {
			t.Fatalf("%s has %d tasks, want %d", archiveName(p, true), n, wantN)
		}
	}
}

// TestRotateAtOpen reopens a cache several hours after it was closed, past
// the end of its newest period: Open rotates.
func TestRotateAtOpen(t *testing.T) {
	dir := t.TempDir()
	const day = 24 * 3600
	clock := newClock(t0 + day - 3600) // 23:00
	opts := func(o *Options) { o.Rotation, o.Retention = 24*time.Hour, 3 }
	w := openTest(t, dir, clock, opts)
	late := pveTask("east", "n1", 1, t0+day-1800, "vzdump", "", "root@pam", t0+day-1700, "OK")
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{late}, Nodes: []NodeResult{{Node: "n1", OK: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Hour) // 04:00 the next day
	w = openTest(t, dir, clock, opts)
	defer w.Close()
	if got := w.Stats().Rotations; got != 1 {
		t.Fatalf("Rotations = %d, want 1", got)
	}
	plain, zst, _ := archiveFiles(t, dir)
	if want := []int64{t0, t0 + day}; !slices.Equal(plain, want) || len(zst) != 1 || zst[0] != t0-day {
		t.Fatalf("plain %v zst %v, want plain %v and one zst for %d", plain, zst, want, t0-day)
	}
	if got := all(w.Latest().Load()); len(got) != 1 || got[0] != late {
		t.Fatalf("tasks after rotation: %v", got)
	}
	if rotated, err := w.MaybeRotate(); rotated || err != nil {
		t.Fatalf("MaybeRotate right after = %v, %v; want false", rotated, err)
	}
}

// TestRotationMovesLateStarts checks that tasks which started after the end
// of the newest period, before the rotation, move to the new period's file.
func TestRotationMovesLateStarts(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 3600 - 60)
	w := openTest(t, dir, clock)
	defer w.Close()
	early := pveTask("east", "n1", 1, t0+3600-30, "vzdump", "", "root@pam", t0+3600-20, "OK")
	late := pveTask("east", "n1", 2, t0+3600+30, "vzdump", "", "root@pam", t0+3600+40, "OK")
	clock.Advance(2 * time.Minute) // past the end of the period, not rotated yet
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{early, late}}); err != nil {
		t.Fatal(err)
	}
	if err := w.ApplyJournal(); err != nil {
		t.Fatal(err)
	}
	if rotated, err := w.MaybeRotate(); !rotated || err != nil {
		t.Fatalf("MaybeRotate = %v, %v", rotated, err)
	}
	for _, c := range []struct {
		period int64
		want   task.Task
	}{{t0, early}, {t0 + 3600, late}} {
		data, err := os.ReadFile(filepath.Join(dir, archiveName(c.period, false)))
		if err != nil {
			t.Fatal(err)
		}
		var got []task.Task
		if ce := scanLines("", data, true, func(tk *task.Task) { got = append(got, *tk) }); ce != nil || len(got) != 1 || got[0] != c.want {
			t.Fatalf("%s holds %v (%v), want %s", archiveName(c.period, false), got, ce, ident(c.want))
		}
	}
}

// TestLongDowntime reopens a cache after more than its retention: every old
// file goes, the new set is complete, running tasks stay.
func TestLongDowntime(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 1800)
	w := openTest(t, dir, clock) // hourly periods, 4 kept
	run := pveTask("east", "n1", 1, t0+10, "vzdump", "", "root@pam", 0, "")
	fin := pveTask("east", "n1", 2, t0+20, "vzdump", "", "root@pam", t0+30, "OK")
	// A task that started after the newest period, before the rotation.
	late := pveTask("east", "n1", 3, t0+3600+20, "vzdump", "", "root@pam", t0+3600+30, "OK")
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{run, fin, late}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Abandon(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Hour)
	w = openTest(t, dir, clock)
	defer w.Close()
	now := clock.Unix()
	plain, zst, _ := archiveFiles(t, dir)
	cur := now - now%3600
	if want := []int64{cur - 3600, cur}; !slices.Equal(plain, want) || !slices.Equal(zst, []int64{cur - 3*3600, cur - 2*3600}) {
		t.Fatalf("files plain %v zst %v, want plain %v", plain, zst, want)
	}
	if got := all(w.Latest().Load()); len(got) != 1 || got[0] != run {
		t.Fatalf("tasks after a long downtime:\n%swant only the running one", describe(got))
	}
}
