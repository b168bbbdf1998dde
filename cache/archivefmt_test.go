package cache

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestArchiveFormat round-trips tasks of every kind (PVE, PBS,
// non-canonical UPIDs, statuses, several blocks) through the binary
// archive format, and checks that damage in a later block keeps the
// earlier blocks.
func TestArchiveFormat(t *testing.T) {
	g := &gen{rng: rand.New(rand.NewSource(3)), base: t0}
	var tasks []task.Task
	seen := map[string]bool{}
	for len(tasks) < 2*archiveBlockTasks+500 {
		tk := g.task(propRemotes[g.rng.Intn(len(propRemotes))])
		if tk.Running() || seen[ident(tk)] {
			continue
		}
		seen[ident(tk)] = true
		tasks = append(tasks, tk)
	}
	slices.SortFunc(tasks, task.Compare)
	data := encodeArchive(t, tasks)
	var got []task.Task
	if ce := scanLines("a", data, true, func(tk *task.Task) { got = append(got, *tk) }); ce != nil {
		t.Fatal(ce)
	}
	if !slices.Equal(got, tasks) {
		t.Fatalf("round trip: %d tasks, want %d", len(got), len(tasks))
	}
	if per := float64(len(data)) / float64(len(tasks)); per > 30 {
		t.Errorf("%.1f bytes per task, want at most 30", per)
	}

	// Damage in the third block: the first two are kept.
	offs := blockOffsets(t, data)
	if len(offs) != 3 {
		t.Fatalf("%d blocks, want 3", len(offs))
	}
	bad := slices.Clone(data)
	bad[offs[2]+frameHeaderLen+10] ^= 0xff
	got = got[:0]
	ce := scanLines("a", bad, true, func(tk *task.Task) { got = append(got, *tk) })
	if ce == nil || ce.Offset != int64(offs[2]) || !errors.Is(ce, errChecksum) {
		t.Fatalf("damaged third block: %v, want a checksum error at %d", ce, offs[2])
	}
	if !slices.Equal(got, tasks[:2*archiveBlockTasks]) {
		t.Fatalf("damaged third block: %d tasks kept, want %d", len(got), 2*archiveBlockTasks)
	}
}

// blockOffsets returns the offsets of the blocks of a binary archive.
func blockOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	for off := len(archiveMagic); off < len(data); {
		offs = append(offs, off)
		n := int(data[off]) | int(data[off+1])<<8 | int(data[off+2])<<16 | int(data[off+3])<<24
		off += frameHeaderLen + n
	}
	return offs
}

// TestLineArchivesMigrate opens a cache whose archive files are JSON lines
// (written before the binary format) with the default options: every task
// is read, nothing is reported damaged, and the files rewritten by the next
// merge and rotation are binary.
func TestLineArchivesMigrate(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 3*3600 + 1800)
	merged, journal := corruptionSetup(t, dir, clock, true)
	for _, name := range []string{archiveName(t0+3*3600, false), archiveName(t0+3600, true)} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == archiveName(t0+3*3600, false) && isBinaryArchive(data) {
			t.Fatalf("%s is binary, want JSON lines", name)
		}
	}
	w := openTest(t, dir, clock)
	defer func() { w.Close() }()
	if cs := w.Corruptions(); len(cs) != 0 {
		t.Fatalf("Corruptions() = %v", cs)
	}
	if got, want := w.Latest().Load().Len(), len(merged)+len(journal); got != want {
		t.Fatalf("%d tasks, want %d", got, want)
	}
	// Open merged the journal into the newest file: binary now.
	data, err := os.ReadFile(filepath.Join(dir, archiveName(t0+3*3600, false)))
	if err != nil {
		t.Fatal(err)
	}
	if !isBinaryArchive(data) {
		t.Fatal("newest archive still JSON lines after a merge")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openTest(t, dir, clock)
	if got, want := w.Latest().Load().Len(), len(merged)+len(journal); got != want || len(w.Corruptions()) != 0 {
		t.Fatalf("reopened: %d tasks (want %d), corruptions %v", got, want, w.Corruptions())
	}
}
