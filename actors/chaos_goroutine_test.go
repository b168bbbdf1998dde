package actors

import (
	"fmt"
	"sync/atomic"
)

// The chaos soak's goroutine panics: a panic in a poller's fetch
// goroutine, in one of its workers, or in a decoder (the client's
// request goroutine, before it decodes a body), at the fetchStage hooks.
// Each must cost its poller one restart, never the process.
func init() {
	stages := []fetchStage{stageFetch, stageWorker, stageDecode}
	// armed[i] is how many panics are due at stages[i], fired[i] how many
	// fired; set afresh by each soak's setup.
	var armed, fired *[3]atomic.Int64
	registerInjector(injector{
		name:   "goroutine panic",
		weight: 3,
		setup: func(c *chaos, o *Options) {
			armed, fired = new([3]atomic.Int64), new([3]atomic.Int64)
			a, f := armed, fired
			prev := o.pollerHook
			o.pollerHook = func(remote string, msg any) {
				if prev != nil {
					prev(remote, msg)
				}
				s, ok := msg.(fetchStage)
				if !ok {
					return
				}
				for i := range stages {
					if stages[i] != s {
						continue
					}
					for n := a[i].Load(); n > 0; n = a[i].Load() {
						if a[i].CompareAndSwap(n, n-1) {
							f[i].Add(1)
							panic(fmt.Sprintf("chaos: %s goroutine panic", s))
						}
					}
				}
			}
		},
		inject: func(c *chaos) string {
			i := c.rng.IntN(len(stages))
			armed[i].Add(1)
			return fmt.Sprintf("goroutine panic (%s)", stages[i])
		},
		heal: func(c *chaos) {
			for i := range armed {
				armed[i].Store(0)
			}
		},
		check: func(c *chaos) {
			for i, s := range stages {
				c.setCount(fmt.Sprintf("goroutine panics fired (%s)", s), int(fired[i].Load()))
			}
		},
	})
}
