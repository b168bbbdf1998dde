package cache

import (
	"runtime"
	"runtime/debug"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TestWritersInSuccessiveSynctestBubbles opens, reopens (decompressing
// archives) and closes Writers in one testing/synctest bubble after the
// other, as the actors' tests and chaos soak do: a zstd coder made in one
// bubble and reused in the next would be a fatal error (it holds
// channels), so Writers must not share them.
func TestWritersInSuccessiveSynctestBubbles(t *testing.T) {
	// A GC or another P would hide a shared coder (sync.Pool).
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for range 2 {
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) {
			clock := newClock(t0)
			for i := range 2 {
				w := openTest(t, dir, clock)
				start := clock.Unix() - 3600 + int64(i)
				b := Batch{Remote: "r1", Tasks: []task.Task{pveTask("r1", "n1", uint32(i+1), start, "vzdump", "100", "root@pam", start+10, "OK")}}
				if err := w.Apply(b); err != nil {
					t.Fatal(err)
				}
				clock.Advance(2 * time.Hour) // rotate: compress the period of the task
				if _, err := w.MaybeRotate(); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
