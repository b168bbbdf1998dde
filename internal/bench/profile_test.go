package bench

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sink keeps the burnt work from being optimised away.
var sink atomic.Int64

// TestCPUSplit burns CPU in goroutines of two labels and checks that the
// profile attributes it to them.
func TestCPUSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a second of CPU")
	}
	p := startCPUProfile()
	if !p.on {
		t.Skip("a CPU profile is already running")
	}
	// A fixed amount of work (about 0.3 s of CPU on an idle core), not a
	// wall-clock time: on a loaded machine a goroutine gets less CPU per
	// second, and the split counts CPU.
	burn := func() {
		x := 0
		for k := range 400_000 {
			for i := range 1000 {
				x += i * k
			}
		}
		sink.Store(int64(x))
	}
	done := make(chan struct{})
	withSide(labelSim, func(context.Context) {
		go func() { // inherits the label
			burn()
			done <- struct{}{}
		}()
	})
	withSide(labelTaskfleet, func(context.Context) { burn() })
	<-done
	// The profile goes to a directory that does not exist: the write
	// fails, and the split is still taken.
	split, err := p.stop(filepath.Join(t.TempDir(), "missing", "sweep.pprof"))
	if err == nil || !strings.Contains(err.Error(), "write CPU profile") {
		t.Errorf("stop = %v, want the failed write", err)
	}
	if !split.OK {
		t.Fatal("no split")
	}
	if split.Sim < 100*time.Millisecond || split.Taskfleet < 100*time.Millisecond {
		t.Errorf("split %+v: want at least 100ms for each side", split)
	}
}
