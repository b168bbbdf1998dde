package cache

import (
	"fmt"
	"testing"
)

// TestReadIndex checks that a view finds the code of every remote and node
// interned before it, and none interned after it, while more are
// interned.
func TestReadIndex(t *testing.T) {
	in := newInterner()
	var views []*dict
	const n = 300
	for i := range n {
		name := fmt.Sprintf("remote-%04d", i)
		if c := in.remote(name); c != uint32(i) {
			t.Fatalf("remote %s got code %d, want %d", name, c, i)
		}
		in.node(fmt.Sprintf("node%d", i%7))
		views = append(views, in.view())
	}
	for v, d := range views {
		for i := range n {
			c, ok := d.remoteIdx.lookup(d.remotes, fmt.Sprintf("remote-%04d", i))
			if want := i <= v; ok != want || (ok && c != uint32(i)) {
				t.Fatalf("view %d: remote-%04d = %d, %v; want %d, %v", v, i, c, ok, i, want)
			}
		}
		if _, ok := d.remoteIdx.lookup(d.remotes, "absent"); ok {
			t.Fatalf("view %d finds an absent remote", v)
		}
		for i := range 7 {
			_, ok := d.nodeIdx.lookup(d.nodes, fmt.Sprintf("node%d", i))
			if want := i <= v; ok != want {
				t.Fatalf("view %d: node%d found %v, want %v", v, i, ok, want)
			}
		}
	}
}

// BenchmarkRemoteFilter is the cost of compiling a filter on one remote
// among 10,000 (each poller's look-ups of its own tasks).
func BenchmarkRemoteFilter(b *testing.B) {
	in := newInterner()
	for i := range 10000 {
		in.remote(fmt.Sprintf("remote-%05d", i))
	}
	d := in.view()
	b.ResetTimer()
	for i := range b.N {
		if _, ok := d.remoteIdx.lookup(d.remotes, fmt.Sprintf("remote-%05d", i%10000)); !ok {
			b.Fatal("not found")
		}
	}
}
