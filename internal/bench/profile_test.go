package bench

import (
	"context"
	"testing"
	"time"
)

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
	burn := func(d time.Duration) {
		x := 0
		for end := time.Now().Add(d); time.Now().Before(end); {
			for i := range 1000 {
				x += i * i
			}
		}
		_ = x
	}
	done := make(chan struct{})
	withSide(labelSim, func(context.Context) {
		go func() { // inherits the label
			burn(300 * time.Millisecond)
			done <- struct{}{}
		}()
	})
	withSide(labelTaskfleet, func(context.Context) { burn(300 * time.Millisecond) })
	<-done
	split := p.stop("")
	if !split.OK {
		t.Fatal("no split")
	}
	if split.Sim < 100*time.Millisecond || split.Taskfleet < 100*time.Millisecond {
		t.Errorf("split %+v: want at least 100ms for each side", split)
	}
}
