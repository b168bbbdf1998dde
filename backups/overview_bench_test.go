package backups

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// benchCluster is a 3-node cluster of 210 listed guests (70 a node), each
// backed up nightly for two weeks by its node's multi-guest vzdump job,
// one guest in 35 failing: an Input like one of the simulator's clusters.
func benchCluster(remote string) Input {
	const nodes, perNode, nights = 3, 70, 14
	const night0 = 1_700_000_000
	in := Input{Remote: remote, Kind: task.PVE, Logs: map[task.UPID]*JobLog{}}
	for n := range nodes {
		node := fmt.Sprintf("pve%d", n+1)
		for i := range perNode {
			in.Guests = append(in.Guests, GuestInfo{VMID: uint32(100 + n*perNode + i), Type: "qemu", Name: fmt.Sprintf("vm-%d", i), Node: node})
		}
		for d := range nights {
			start := int64(night0 + d*86400 + n*60)
			u := task.UPID{Kind: task.PVE, Node: node, PID: uint32(1000 + d), StartTime: start, Type: "vzdump", User: "root@pam"}
			j := &JobLog{Storage: "pbs-1", Ended: true}
			for i := range perNode {
				g := GuestResult{VMID: fmt.Sprint(100 + n*perNode + i), Type: "qemu", OK: i%35 != 0}
				if !g.OK {
					g.Error = "job failed with err -5 - Input/output error"
				}
				j.Guests = append(j.Guests, g)
			}
			in.Logs[u] = j
			in.Tasks = append(in.Tasks, task.Task{Remote: remote, UPID: u, EndTime: start + 3600, Status: "job errors"})
		}
	}
	return in
}

// BenchmarkBuild: one cluster's part, and the heap a part keeps per guest
// (the guest list excluded: the keeper holds it either way).
func BenchmarkBuild(b *testing.B) {
	in := benchCluster("pve")
	b.ReportAllocs()
	for b.Loop() {
		Build(in)
	}
	b.StopTimer()
	const parts = 200
	inputs := make([]Input, parts)
	for i := range inputs {
		inputs[i] = benchCluster(fmt.Sprint("pve", i))
	}
	kept := make([]Part, parts)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range kept {
		kept[i] = Build(inputs[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(parts*len(in.Guests)), "B/guest-kept")
	runtime.KeepAlive(kept)
	runtime.KeepAlive(inputs)
}

// BenchmarkGuestsQuery: the overview's guest queries over 1,000 clusters
// (210,000 guests): every row, and the failing ones only.
func BenchmarkGuestsQuery(b *testing.B) {
	parts := make([]Part, 1000)
	for i := range parts {
		parts[i] = Build(benchCluster(fmt.Sprintf("pve%04d", i)))
	}
	o := New(time.Unix(1_700_000_000, 0), parts...)
	now := time.Unix(1_702_000_000, 0)
	for _, q := range []struct {
		name string
		q    Query
	}{{"all", Query{}}, {"errors", Query{Classes: []string{ClassError}}}} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if len(o.Guests(q.q, now)) == 0 {
					b.Fatal("no rows")
				}
			}
		})
	}
}
