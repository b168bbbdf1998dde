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
// "backfill 12/25 remotes, 48,210 tasks" while it changes, then once
// "backfill complete". It is driven by one goroutine (the daemon's
// progress loop).
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
}

// progressEvery throttles the progress line while only the number of
// tasks changes.
const progressEvery = 5 * time.Second

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
	if p.lastLog.IsZero() || done != p.lastDone || total != p.lastAll || tasks != p.lastLen && now.Sub(p.lastLog) >= progressEvery {
		p.log.Info().Int("remotes_done", done).Int("remotes", total).Int("tasks", tasks).
			Msgf("backfill %d/%d remotes, %s tasks", done, total, thousands(tasks))
		p.lastLog, p.lastLen, p.lastDone, p.lastAll = now, tasks, done, total
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
