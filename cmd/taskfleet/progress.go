package main

import (
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/metrics"
)

// progress follows the backfill: a remote counts as backfilled once its
// first fetch has succeeded. It sets taskfleet_remotes_backfilled and logs
// transitions only: "backfill 12/25 remotes, 48,210 tasks" when a remote
// is done, once "backfill waiting for 3 remotes" with their names when
// none was done for stallAfter, and once "backfill complete". It is
// driven by one goroutine (the daemon's progress loop).
type progress struct {
	log     zerolog.Logger
	metrics *metrics.Metrics
	// activityEvery, when positive, logs the number of cached tasks at
	// this interval once the backfill is complete.
	activityEvery time.Duration

	began    time.Time // first update
	complete bool      // the last update found every remote backfilled
	lastDone int       // remotes backfilled at the last log line
	lastAll  int       // remotes configured at the last log line
	lastLog  time.Time // last progress or activity line
	lastLen  int       // tasks at the last log line
	stalled  bool      // "waiting for" was logged since the last progress
}

// stallAfter is how long the backfill may make no progress before the
// remotes it waits for are named (once).
const stallAfter = 2 * time.Minute

// update records the state at now: the remotes' health and the cache.
func (p *progress) update(now time.Time, remotes []api.RemoteStatus, snap *cache.Snapshot) {
	if p.began.IsZero() {
		p.began = now
	}
	done := 0
	for _, r := range remotes {
		if r.LastSuccess != 0 {
			done++
		}
	}
	total := len(remotes)
	p.metrics.SetBackfill(done, total)
	tasks, running := 0, 0
	if snap != nil {
		tasks, running = snap.Len(), snap.RunningLen()
	}
	if done == total {
		if !p.complete {
			p.complete = true
			p.log.Info().Int("remotes", total).Int("tasks", tasks).Dur("duration_ms", now.Sub(p.began)).
				Msgf("backfill complete: %d remotes, %s tasks", total, thousands(tasks))
			p.lastLog, p.lastLen, p.lastDone = now, tasks, done
		} else if p.activityEvery > 0 && now.Sub(p.lastLog) >= p.activityEvery {
			p.log.Info().Int("tasks", tasks).Int("new", tasks-p.lastLen).Int("running", running).
				Msgf("%s tasks cached (%+d), %d running", thousands(tasks), tasks-p.lastLen, running)
			p.lastLog, p.lastLen = now, tasks
		}
		return
	}
	p.complete = false
	if p.lastLog.IsZero() || done != p.lastDone || total != p.lastAll {
		p.log.Info().Int("remotes_done", done).Int("remotes", total).Int("tasks", tasks).
			Msgf("backfill %d/%d remotes, %s tasks", done, total, thousands(tasks))
		p.lastLog, p.lastLen, p.lastDone, p.lastAll, p.stalled = now, tasks, done, total, false
		return
	}
	if !p.stalled && now.Sub(p.lastLog) >= stallAfter {
		// Logged once per stall: the remotes' state is in the status API.
		p.stalled = true
		var waiting []string
		for _, r := range remotes {
			if r.LastSuccess == 0 && len(waiting) < 10 {
				waiting = append(waiting, r.Remote+" ("+r.State+")")
			}
		}
		p.log.Warn().Int("remotes_done", done).Int("remotes", total).Int("tasks", tasks).Strs("waiting", waiting).
			Msgf("backfill waiting for %d remotes", total-done)
	}
}

// thousands formats n with commas between groups of three digits: 48,210.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
