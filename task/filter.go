package task

import "strings"

// DefaultLimit is the number of tasks a list returns when no limit is given.
const DefaultLimit = 50

// Filter selects tasks. It carries Proxmox Datacenter Manager's TaskFilters
// plus remote, node and the set of remotes the caller may see.
//
// Where PDM is vague or lax, taskfleet decides (see docs/cache.md):
// Errors selects finished tasks whose status is not ok (PDM also returns
// running tasks); StatusFilter, like PBS, never matches running tasks;
// UserFilter is a case-insensitive substring of the full user, token
// included; TypeFilter is a case-sensitive substring of the worker type.
type Filter struct {
	Start int // skip this many matching tasks
	Limit int // return at most this many; 0 means no limit (as in PDM)

	Running      bool      // only running tasks
	Errors       bool      // only finished tasks whose status is not ok
	UserFilter   string    // substring of the user, case-insensitive
	TypeFilter   string    // substring of the worker type
	StatusFilter StatusSet // only finished tasks of these classes; empty: any
	Since        int64     // only tasks started at or after this Unix time; 0: no bound
	Until        int64     // only tasks started at or before this Unix time; 0: no bound

	Remote string // only this remote; "": all
	Node   string // only this node; "": all

	// Scope, when not nil, is the set of remotes the caller may see (a
	// scoped API token). Tasks of other remotes never match.
	Scope map[string]bool
}

// NewFilter returns a filter with PDM's defaults: limit 50, no conditions.
func NewFilter() Filter { return Filter{Limit: DefaultLimit} }

// Match reports whether t passes every condition of f (Start and Limit aside).
// It is the reference semantics; the cache may evaluate the same conditions
// in another order or with indexes but must agree with Match.
func (f *Filter) Match(t *Task) bool {
	if f.Remote != "" && t.Remote != f.Remote {
		return false
	}
	if f.Scope != nil && !f.Scope[t.Remote] {
		return false
	}
	if f.Node != "" && t.UPID.Node != f.Node {
		return false
	}
	if f.Since != 0 && t.UPID.StartTime < f.Since {
		return false
	}
	if f.Until != 0 && t.UPID.StartTime > f.Until {
		return false
	}
	running := t.Running()
	if f.Running && !running {
		return false
	}
	if f.Errors && (running || t.Class() == StatusOK) {
		return false
	}
	if !f.StatusFilter.Empty() && (running || !f.StatusFilter.Has(t.Class())) {
		return false
	}
	if f.TypeFilter != "" && !strings.Contains(t.UPID.Type, f.TypeFilter) {
		return false
	}
	if f.UserFilter != "" && !containsFold(t.UPID.User, f.UserFilter) {
		return false
	}
	return true
}

// containsFold reports whether sub is within s, ignoring ASCII and Unicode
// simple case differences.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// Page is one page of a task list.
type Page struct {
	Tasks []Task // at most Limit tasks, newest first
	Total int    // number of all matching tasks
}

// Counts are task counts per status class.
type Counts struct {
	OK      int `json:"ok"`
	Warning int `json:"warning"`
	Error   int `json:"error"`
	Unknown int `json:"unknown"`
}

// Add counts one task of class c.
func (c *Counts) Add(class StatusClass) {
	switch class {
	case StatusOK:
		c.OK++
	case StatusWarning:
		c.Warning++
	case StatusError:
		c.Error++
	default:
		c.Unknown++
	}
}

// Statistics counts finished tasks by worker type and by remote, with PDM's
// JSON names. Running tasks have no status yet and are not counted.
type Statistics struct {
	ByType   map[string]Counts `json:"by-type"`
	ByRemote map[string]Counts `json:"by-remote"`
}
