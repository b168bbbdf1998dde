package cache

import (
	"math/rand/v2"
	"testing"
)

// TestBloomFalsePositives checks that a filter finds every task added and
// lets through about 1% of the others (the rate its cost was sized for),
// for recs that differ in one field only, as a remote's tasks do.
func TestBloomFalsePositives(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	gen := func() rec {
		return rec{start: t0 + rng.Int64N(86400), pstart: rng.Uint64N(1 << 34), pid: rng.Uint32N(1 << 22),
			remote: 7, node: rng.Uint32N(8), typ: rng.Uint32N(30), id: rng.Uint32N(900), user: rng.Uint32N(300)}
	}
	for _, n := range []int{bloomMinTasks, 10_000, 100_000} {
		f := newBloom(n)
		in := make([]rec, n)
		for i := range in {
			in[i] = gen()
			f.add(taskHash(&in[i]))
		}
		for i := range in {
			if !f.mayContain(taskHash(&in[i])) {
				t.Fatalf("n=%d: task %d added but not found", n, i)
			}
		}
		const tries = 200_000
		fp := 0
		for range tries {
			r := gen()
			r.pid |= 1 << 23 // not among the tasks added
			if f.mayContain(taskHash(&r)) {
				fp++
			}
		}
		if rate := float64(fp) / tries; rate > 0.02 {
			t.Errorf("n=%d: %.2f%% false positives, want about 1%%", n, 100*rate)
		} else {
			t.Logf("n=%d: %.2f%% false positives", n, 100*rate)
		}
	}
}
