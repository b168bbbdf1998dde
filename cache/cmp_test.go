package cache

import (
	"math/rand/v2"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestCmpAgreesWithCompare checks dict.cmp, with its short way from the
// fields (cmpFields), against task.Compare on tasks of one start time
// whose nodes are prefixes of each other and whose numbers straddle the
// 8-hex-digit width.
func TestCmpAgreesWithCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	nodes := []string{"a", "a-b", "a0", "A", "ab", "b", "a-"}
	nums := []uint64{0, 1, 0xFFFFFFFE, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFFF}
	gen := func() task.Task {
		u := task.UPID{Kind: task.PVE, Node: nodes[rng.IntN(len(nodes))], PID: uint32(nums[rng.IntN(4)]),
			PStart: nums[rng.IntN(len(nums))], StartTime: t0, Type: []string{"a", "a-b", "b"}[rng.IntN(3)], User: "root@pam"}
		if rng.IntN(2) == 0 {
			u.Kind, u.TaskID = task.PBS, nums[rng.IntN(len(nums))]
		}
		return task.Task{Remote: []string{"east", "west"}[rng.IntN(2)], UPID: u}
	}
	in := newInterner()
	decided := 0
	for range 20000 {
		x, y := gen(), gen()
		rx, _ := in.toRec(&x)
		ry, _ := in.toRec(&y)
		d := in.view()
		if _, ok := d.cmpFields(&rx, &ry); ok {
			decided++
		}
		if got, want := d.cmp(&rx, nil, &ry, nil), task.Compare(x, y); got != want {
			t.Fatalf("cmp(%s, %s) = %d, want %d", x.UPID, y.UPID, got, want)
		}
	}
	if decided < 1000 {
		t.Fatalf("the fields decided only %d of 20000 comparisons: the test does not test the short way", decided)
	}
}
