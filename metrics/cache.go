package metrics

// CacheStats is the state of the task cache as its writer reports it after
// each change. The counters are cumulative since the writer opened the
// cache; they start again at zero when the writer restarts.
type CacheStats struct {
	Tasks        int   // cached tasks, running and finished
	JournalBytes int64 // size of the journal not yet applied
	Files        int   // archive files on disk
	Rotations    int64 // rotations since the cache was opened
	Corruptions  int64 // damaged files found since the cache was opened
	SlowSyncs    int64 // fsyncs over a second since the cache was opened
}

// ObserveCache records the cache's state: it sets the gauges and advances
// taskfleet_rotations_total, taskfleet_cache_corruptions_total and
// taskfleet_cache_slow_fsyncs_total by what
// the cumulative counters grew since the last call (or by their whole
// value after the writer restarted and they went back).
func (m *Metrics) ObserveCache(s CacheStats) {
	if m == nil {
		return
	}
	m.tasksCached.Set(float64(s.Tasks))
	m.journalBytes.Set(float64(s.JournalBytes))
	m.cacheFiles.Set(float64(s.Files))

	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	m.rotations.Add(float64(growth(m.lastCache.Rotations, s.Rotations)))
	m.corruptions.Add(float64(growth(m.lastCache.Corruptions, s.Corruptions)))
	m.disk.slowSyncs.Add(float64(growth(m.lastCache.SlowSyncs, s.SlowSyncs)))
	m.lastCache = s
}

// growth is how much a cumulative counter grew from last to now; a smaller
// value means the counter was reset, so all of now is new.
func growth(last, now int64) int64 {
	if now < last {
		return now
	}
	return now - last
}
