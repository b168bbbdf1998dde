package config

import (
	"reflect"
	"slices"
)

// Diff compares the remotes of c with those of old (nil: none) by id and
// returns the ids of remotes that are new in c, gone from c, and present in
// both with any setting changed (secret, endpoints, limits...), each sorted.
// It ignores [server] and [polling]: a remote whose effective settings
// depend on [polling] (max_connections) shows up as changed when they do.
func (c *Config) Diff(old *Config) (added, removed, changed []string) {
	before := map[string]*Remote{}
	if old != nil {
		for i := range old.Remotes {
			before[old.Remotes[i].ID] = &old.Remotes[i]
		}
	}
	now := map[string]bool{}
	for i := range c.Remotes {
		r := &c.Remotes[i]
		now[r.ID] = true
		prev, ok := before[r.ID]
		switch {
		case !ok:
			added = append(added, r.ID)
		case !reflect.DeepEqual(prev, r):
			changed = append(changed, r.ID)
		}
	}
	for id := range before {
		if !now[id] {
			removed = append(removed, id)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}
