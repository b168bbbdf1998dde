package cache

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestSortRun checks sortRun against task.Compare for input in list order,
// in reverse order (both take the no-sort path), shuffled and with
// repeats, with non-canonical UPIDs and equal start times.
func TestSortRun(t *testing.T) {
	g := &gen{rng: rand.New(rand.NewSource(7)), base: t0}
	for round := range 50 {
		in := newInterner()
		var tasks []task.Task
		seen := map[string]bool{}
		for range 1 + g.rng.Intn(60) {
			tk := g.task(propRemotes[g.rng.Intn(2)])
			if !seen[ident(tk)] {
				seen[ident(tk)] = true
				tasks = append(tasks, tk)
			}
		}
		want := slices.Clone(tasks)
		slices.SortFunc(want, task.Compare)
		variants := map[string][]task.Task{
			"sorted":   slices.Clone(want),
			"reversed": slices.Clone(want),
			"shuffled": slices.Clone(want),
			"repeats":  append(slices.Clone(want), want[0]),
		}
		slices.Reverse(variants["reversed"])
		g.rng.Shuffle(len(want), func(i, j int) {
			variants["shuffled"][i], variants["shuffled"][j] = variants["shuffled"][j], variants["shuffled"][i]
		})
		for name, ts := range variants {
			recs := make([]rec, len(ts))
			raws := map[int]*task.UPID{}
			for i := range ts {
				var raw bool
				recs[i], raw = in.toRec(&ts[i])
				if raw {
					raws[i] = &ts[i].UPID
				}
			}
			d := in.view()
			r := sortRun(d, recs, raws)
			got := make([]task.Task, r.len())
			for i := range got {
				got[i] = d.task(&r.recs[i], r.raw(i))
			}
			if !slices.EqualFunc(got, want, func(a, b task.Task) bool { return ident(a) == ident(b) }) {
				t.Fatalf("round %d, %s: got\n%swant\n%s", round, name, describe(got), describe(want))
			}
		}
	}
}
