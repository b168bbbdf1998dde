package cache

import (
	"math/rand"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestMarkKnown checks the batch lookup against a search per task, for a
// segment large enough for a Bloom filter and for a small one.
func TestMarkKnown(t *testing.T) {
	for _, size := range []int{300, 3 * bloomMinTasks} {
		in := newInterner()
		g := &gen{rng: rand.New(rand.NewSource(int64(size))), base: t0}
		var stored, batch []rec
		rawsS, rawsB := map[int]*task.UPID{}, map[int]*task.UPID{}
		for i := range size {
			tk := g.task(propRemotes[i%len(propRemotes)])
			tk.EndTime = tk.UPID.StartTime + 1
			r, raw := in.toRec(&tk)
			if raw {
				rawsS[len(stored)] = &tk.UPID
			}
			stored = append(stored, r)
			if i%3 == 0 { // a third of the batch is known
				if raw {
					rawsB[len(batch)] = &tk.UPID
				}
				batch = append(batch, r)
			}
		}
		for range size / 2 {
			tk := g.task("e")
			tk.EndTime = tk.UPID.StartTime + 1
			r, raw := in.toRec(&tk)
			if raw {
				rawsB[len(batch)] = &tk.UPID
			}
			batch = append(batch, r)
		}
		d := in.view()
		seg := newSegment(d, sortRun(d, stored, rawsS))
		if (seg.filter.words != nil) != (size >= bloomMinTasks) {
			t.Fatalf("size %d: filter built = %v", size, seg.filter.words != nil)
		}
		b := sortRun(d, batch, rawsB)
		keep := make([]bool, b.len())
		for i := range keep {
			keep[i] = true
		}
		seg.markKnown(&b, keep)
		known := 0
		for i := range keep {
			want := seg.find(&b.recs[i], b.raw(i)) < 0
			if keep[i] != want {
				t.Fatalf("size %d: task %d: keep = %v, want %v", size, i, keep[i], want)
			}
			if !want {
				known++
			}
		}
		if known != (size+2)/3 {
			t.Fatalf("size %d: %d known, want %d", size, known, (size+2)/3)
		}
	}
}
