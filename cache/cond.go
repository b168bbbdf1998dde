package cache

import (
	"math"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// cond is a task.Filter compiled against a dict: string conditions become
// sets of codes, status conditions a set of slots. match agrees with
// task.Filter.Match.
type cond struct {
	none bool // nothing can match

	remote       int64  // code of Filter.Remote, or -1 for any
	node         int64  // code of Filter.Node, or -1 for any
	scope        []bool // by remote code; nil: any
	types, users []bool // by code; nil: any

	since, until int64
	slots        [nslots]bool
}

// Condition kinds a segment source or aggregate may cover.
const (
	needRemote = 1 << iota
	needScope
	needNode
	needType
	needUser
	needSlot
)

// compile compiles f. Start and Limit are not part of the condition.
func compile(f *task.Filter, d *dict) cond {
	c := cond{remote: -1, node: -1, since: math.MinInt64, until: math.MaxInt64}
	if f.Since != 0 {
		c.since = f.Since
	}
	if f.Until != 0 {
		c.until = f.Until
	}
	if c.since > c.until {
		c.none = true
	}
	if f.Remote != "" {
		code, ok := d.remoteIdx.lookup(d.remotes, f.Remote)
		c.remote = int64(code)
		c.none = c.none || !ok
	}
	if f.Node != "" {
		code, ok := d.nodeIdx.lookup(d.nodes, f.Node)
		c.node = int64(code)
		c.none = c.none || !ok
	}
	if f.Scope != nil {
		c.scope = make([]bool, len(d.remotes))
		any := false
		for i, r := range d.remotes {
			if f.Scope[r] {
				c.scope[i], any = true, true
			}
		}
		c.none = c.none || !any
	}
	if f.TypeFilter != "" {
		c.types = make([]bool, len(d.types))
		any := false
		for i, t := range d.types {
			if strings.Contains(t, f.TypeFilter) {
				c.types[i], any = true, true
			}
		}
		c.none = c.none || !any
	}
	if f.UserFilter != "" {
		c.users = make([]bool, len(d.users))
		sub := strings.ToLower(f.UserFilter)
		any := false
		for i, u := range d.users {
			// The same test as task.Filter.Match's containsFold.
			if len(f.UserFilter) <= len(u) && strings.Contains(d.userLower[i], sub) {
				c.users[i], any = true, true
			}
		}
		c.none = c.none || !any
	}
	for sl := range c.slots {
		running := sl == slotRunning
		class := task.StatusClass(sl)
		ok := true
		if f.Running && !running {
			ok = false
		}
		if f.Errors && (running || class == task.StatusOK) {
			ok = false
		}
		if !f.StatusFilter.Empty() && (running || !f.StatusFilter.Has(class)) {
			ok = false
		}
		c.slots[sl] = ok
	}
	if c.slots == ([nslots]bool{}) {
		c.none = true
	}
	return c
}

// needs returns the condition kinds c has besides the start-time window.
func (c *cond) needs() int {
	n := 0
	if c.remote >= 0 {
		n |= needRemote
	}
	if c.scope != nil {
		n |= needScope
	}
	if c.node >= 0 {
		n |= needNode
	}
	if c.types != nil {
		n |= needType
	}
	if c.users != nil {
		n |= needUser
	}
	for _, ok := range c.slots {
		if !ok {
			n |= needSlot
			break
		}
	}
	return n
}

// match reports whether r passes every condition.
func (c *cond) match(d *dict, r *rec) bool {
	if r.start < c.since || r.start > c.until {
		return false
	}
	if !c.slots[d.slot(r)] {
		return false
	}
	if c.remote >= 0 && int64(r.remote) != c.remote {
		return false
	}
	if c.scope != nil && !c.scope[r.remote] {
		return false
	}
	if c.node >= 0 && int64(r.node) != c.node {
		return false
	}
	if c.types != nil && !c.types[r.typ] {
		return false
	}
	if c.users != nil && !c.users[r.user] {
		return false
	}
	return true
}

// outside returns c without its start-time window.
func (c *cond) outside() *cond {
	o := *c
	o.since, o.until = math.MinInt64, math.MaxInt64
	return &o
}

// sum adds the counts of the allowed slots.
func (c *cond) sum(v *[nslots]int32) int {
	n := 0
	for sl, ok := range c.slots {
		if ok {
			n += int(v[sl])
		}
	}
	return n
}
