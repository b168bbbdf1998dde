package actors

import (
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/metrics"
)

// writeFailure is why the cache's writes fail.
type writeFailure struct {
	err      error
	kind     string    // cache.DiskErrorKind
	since    time.Time // first failed write of this spell
	failures int       // failed writes since
}

// writerHealth is whether the cache's disk takes writes: the writer
// actor, its only writer, notes the result of every write; Readiness,
// WriterFailure and metrics read it. It lives in Env, so it survives the
// writer's restarts: a failure ends with the first write that succeeds,
// not with a reopen (a full disk opens fine and fails the next batch).
type writerHealth struct {
	p atomic.Pointer[writeFailure]
}

// failure returns the current write failure, nil while writes succeed.
func (h *writerHealth) failure() *writeFailure { return h.p.Load() }

// note records the result of a write: nil for one that reached the
// disk. Errors that are not the disk's (invalid input) leave the state
// alone. The log tells the transitions:
// failing (and a change of kind) and recovered.
func (h *writerHealth) note(err error, log zerolog.Logger, m *metrics.Metrics) {
	cur := h.p.Load()
	if err == nil {
		if cur != nil {
			h.p.Store(nil)
			m.CacheWriteRecovered()
			log.Info().Int("failures", cur.failures).Int64("failed_for_ms", time.Since(cur.since).Milliseconds()).
				Msg("cache writes recovered")
		}
		return
	}
	kind := cache.DiskErrorKind(err)
	if kind == "" {
		return
	}
	m.CacheWriteFailed(kind)
	next := &writeFailure{err: err, kind: kind, since: time.Now(), failures: 1}
	if cur != nil {
		next.since, next.failures = cur.since, cur.failures+1
	}
	h.p.Store(next)
	if cur == nil || cur.kind != kind {
		log.Error().Err(err).Str("kind", kind).
			Msg("cache writes failing: queries are answered from memory, cutoffs held until a write succeeds")
	}
}
