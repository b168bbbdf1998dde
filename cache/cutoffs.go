package cache

import (
	"hash/maphash"
	"maps"
)

// cutoffShards is the number of shards of a cutoffTable.
const cutoffShards = 256

// cutoffTable maps remote → node → cutoff. The Writer changes it; snapshots
// and the checkpoint keep copies of it, which share its maps. A stored node
// map is never changed (a change stores a new one), and after a copy the
// Writer clones only the shard it changes next, about 1/256 of the remotes,
// so that a publish costs what changed rather than the number of remotes.
type cutoffTable struct {
	shards [cutoffShards]map[string]map[string]int64
}

var cutoffSeed = maphash.MakeSeed()

func cutoffShard(remote string) int {
	return int(maphash.String(cutoffSeed, remote) % cutoffShards)
}

// get returns the cutoff of a node of a remote.
func (t *cutoffTable) get(remote, node string) (int64, bool) {
	c, ok := t.shards[cutoffShard(remote)][remote][node]
	return c, ok
}

// nodes returns the node → cutoff map of a remote; the caller must not
// change it.
func (t *cutoffTable) nodes(remote string) map[string]int64 {
	return t.shards[cutoffShard(remote)][remote]
}

// each calls f for every remote with cutoffs; f must not change nodes. It
// may set or remove the cutoffs of the remote it is given through the
// cutoffWriter: each ranges over a copy of the shard array, and those
// changes replace or delete only that remote's key.
func (t *cutoffTable) each(f func(remote string, nodes map[string]int64)) {
	for _, sh := range t.shards {
		for r, nodes := range sh {
			f(r, nodes)
		}
	}
}

// toMap returns the table as one map (for the state file and the journal).
func (t *cutoffTable) toMap() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	t.each(func(r string, nodes map[string]int64) { out[r] = nodes })
	return out
}

// cutoffWriter is the Writer's cutoffTable with the shards it may change
// in place (those cloned since the last share).
type cutoffWriter struct {
	cutoffTable
	owned [cutoffShards / 64]uint64
}

// share returns a copy of the table for a reader; the Writer clones a
// shard before it next changes it.
func (w *cutoffWriter) share() cutoffTable {
	w.owned = [cutoffShards / 64]uint64{}
	return w.cutoffTable
}

// reset empties the table.
func (w *cutoffWriter) reset() { *w = cutoffWriter{} }

// own returns the shard of remote, cloned first when it is shared.
func (w *cutoffWriter) own(remote string) map[string]map[string]int64 {
	i := cutoffShard(remote)
	if w.owned[i/64]&(1<<(i%64)) == 0 {
		w.shards[i] = maps.Clone(w.shards[i])
		if w.shards[i] == nil {
			w.shards[i] = map[string]map[string]int64{}
		}
		w.owned[i/64] |= 1 << (i % 64)
	}
	return w.shards[i]
}

// set sets the cutoff of a node of a remote.
func (w *cutoffWriter) set(remote, node string, c int64) {
	sh := w.own(remote)
	nodes := maps.Clone(sh[remote])
	if nodes == nil {
		nodes = map[string]int64{}
	}
	nodes[node] = c
	sh[remote] = nodes
}

// remove removes the cutoff of a node of a remote, and the remote when it
// was its last.
func (w *cutoffWriter) remove(remote, node string) {
	if _, ok := w.get(remote, node); !ok {
		return
	}
	sh := w.own(remote)
	nodes := maps.Clone(sh[remote])
	delete(nodes, node)
	if len(nodes) == 0 {
		delete(sh, remote)
		return
	}
	sh[remote] = nodes
}

// drop removes every cutoff of a remote.
func (w *cutoffWriter) drop(remote string) {
	if w.nodes(remote) != nil {
		delete(w.own(remote), remote)
	}
}
