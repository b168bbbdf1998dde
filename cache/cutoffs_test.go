package cache

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// TestCutoffTableSharing changes a cutoffWriter at random and checks, after
// every step, that it equals a plain map and that every copy shared before
// still holds what it held when it was shared.
func TestCutoffTableSharing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w cutoffWriter
	model := map[string]map[string]int64{}
	type shared struct {
		tbl  cutoffTable
		want map[string]map[string]int64
	}
	var copies []shared
	clone := func(m map[string]map[string]int64) map[string]map[string]int64 {
		out := map[string]map[string]int64{}
		for r, nodes := range m {
			out[r] = maps.Clone(nodes)
		}
		return out
	}
	for step := range 5000 {
		remote := fmt.Sprintf("r%d", rng.IntN(600))
		node := fmt.Sprintf("n%d", rng.IntN(4))
		switch op := rng.IntN(10); {
		case op < 6:
			c := rng.Int64N(1000)
			w.set(remote, node, c)
			if model[remote] == nil {
				model[remote] = map[string]int64{}
			}
			model[remote][node] = c
		case op < 8:
			w.remove(remote, node)
			delete(model[remote], node)
			if len(model[remote]) == 0 {
				delete(model, remote)
			}
		case op < 9:
			w.drop(remote)
			delete(model, remote)
		default:
			copies = append(copies, shared{w.share(), clone(model)})
		}
		if got := w.toMap(); !equalCutoffs(got, model) {
			t.Fatalf("step %d: table %v, want %v", step, got, model)
		}
		want, wantOK := model[remote][node]
		if c, ok := w.get(remote, node); c != want || ok != wantOK {
			t.Fatalf("step %d: get(%s, %s) = %d, %v; want %d, %v", step, remote, node, c, ok, want, wantOK)
		}
	}
	if len(copies) < 100 {
		t.Fatalf("only %d copies shared", len(copies))
	}
	for i, c := range copies {
		if got := c.tbl.toMap(); !equalCutoffs(got, c.want) {
			t.Fatalf("copy %d changed after it was shared", i)
		}
	}
}

func equalCutoffs(a, b map[string]map[string]int64) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]int64) bool { return maps.Equal(x, y) })
}
