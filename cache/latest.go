package cache

// Published returns the most recently published snapshot, or nil when no
// Writer has published one yet (the cache is still loading): unlike Load,
// it tells an empty cache from one not loaded.
func (l *Latest) Published() *Snapshot { return l.p.Load() }
