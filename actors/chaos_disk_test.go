package actors

import (
	"time"

	"github.com/taskfleet/taskfleet/cache"
)

// The chaos soak's disk faults: the cache writer's file operations meet
// ENOSPC, EIO, a read-only file system or slow fsyncs (cache.Faults, on
// top of the real file system) for one to ten minutes. While a fault
// lasts, queries are answered from memory and no cutoff advances; once the
// disk is back the writer recovers (a restart with backoff for EIO and
// read-only) and the fleet catches up: the soak's final comparison with
// the ground truth, after chaosFinalWait, is the check.
func init() {
	var (
		faults *cache.Faults // set afresh by each soak's setup
		until  time.Time     // when the fault in place ends
	)
	registerInjector(injector{
		name:   "disk fault",
		weight: 2,
		setup: func(c *chaos, o *Options) {
			faults, until = &cache.Faults{}, time.Time{}
			o.CacheOptions.Faults = faults
		},
		step: func(c *chaos) {
			if faults.Current() != cache.FaultNone && time.Now().After(until) {
				faults.Set(cache.FaultNone)
			}
		},
		inject: func(c *chaos) string {
			if faults.Current() != cache.FaultNone {
				return ""
			}
			f := cache.DiskFaults[c.rng.IntN(len(cache.DiskFaults))]
			faults.Set(f)
			until = time.Now().Add(time.Duration(1+c.rng.IntN(10)) * time.Minute)
			return "disk " + f.String()
		},
		heal: func(c *chaos) { faults.Set(cache.FaultNone) },
		check: func(c *chaos) {
			for _, f := range cache.DiskFaults {
				c.setCount("disk operations that met "+f.String(), int(faults.Count(f)))
			}
		},
	})
}

// diskFaulty reports whether the cache writer may be failing now: a disk
// fault is in place, or the writer has not recovered from one. Injectors
// whose checks need a working writer (a track request) skip then.
func (c *chaos) diskFaulty() bool {
	f := c.h.opts.CacheOptions.Faults
	return f != nil && f.Current() != cache.FaultNone || c.h.sys.WriterFailure() != nil
}
