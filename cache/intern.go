package cache

import (
	"strings"
	"sync"

	"github.com/taskfleet/taskfleet/task"
)

// strtab interns the strings of one kind (remote ids, node names, ...): each
// distinct string gets a small dense code. Only the Writer uses the map; the
// slice is shared with readers (see dict).
type strtab struct {
	idx  map[string]uint32
	strs []string
	// The last string looked up and its code: tasks in a batch repeat
	// their node, type, user and status, and a comparison is cheaper than
	// a map lookup.
	last     string
	lastCode uint32
	// checked has, per code, a bit per task.Kind for which the string
	// passed the UPID field check (see check).
	checked []uint8
}

func newStrtab() strtab { return strtab{idx: make(map[string]uint32)} }

// code returns the code of s, adding s when it is new. It reports whether s
// was added.
func (t *strtab) code(s string) (uint32, bool) {
	if len(t.strs) > 0 && s == t.last { // last is set by the first code call
		return t.lastCode, false
	}
	if c, ok := t.idx[s]; ok {
		t.last, t.lastCode = t.strs[c], c
		return c, false
	}
	c := uint32(len(t.strs))
	s = strings.Clone(s) // never keep a parsed file buffer alive
	t.idx[s] = c
	t.strs = append(t.strs, s)
	t.checked = append(t.checked, 0)
	t.last, t.lastCode = s, c
	return c, true
}

// find returns the code of s without adding it.
func (t *strtab) find(s string) (uint32, bool) {
	if len(t.strs) > 0 && s == t.last {
		return t.lastCode, true
	}
	c, ok := t.idx[s]
	if ok {
		t.last, t.lastCode = t.strs[c], c
	}
	return c, ok
}

// check is find for a string field f of a UPID of kind k that it also
// checks (task.ValidField), once per string and kind: ok is false when
// the string fails.
func (t *strtab) check(s string, k task.Kind, f task.UPIDField) (code uint32, found, ok bool) {
	c, found := t.find(s)
	bit := uint8(1) << (k & 7)
	if found && t.checked[c]&bit != 0 {
		return c, true, true
	}
	if !task.ValidField(k, f, s) {
		return 0, false, false
	}
	if found {
		t.checked[c] |= bit
	}
	return c, found, true
}

// interner holds the Writer's string tables and the values derived from each
// string once (lower-cased user, status class, escaped worker id, JSON
// string contents), so that queries and the line encoder never recompute
// them.
type interner struct {
	remotes, nodes, types, ids, users, statuses strtab

	// remoteIdx and nodeIdx let readers find the code of a remote or node
	// (a filter's exact match) without the Writer's maps.
	remoteIdx, nodeIdx *readIndex

	userLower   []string           // strings.ToLower of users.strs[i]
	statusClass []task.StatusClass // task.ClassifyStatus of statuses.strs[i]
	idEscaped   []string           // task.EscapeWorkerID of ids.strs[i] (PBS form)
	json        jsonForms
}

// jsonForms are the strings as they appear inside JSON strings (escaped,
// without quotes), per code.
type jsonForms struct {
	remotes, nodes, types, ids, idEscaped, users, statuses []string
}

func newInterner() *interner {
	return &interner{
		remotes: newStrtab(), nodes: newStrtab(), types: newStrtab(),
		ids: newStrtab(), users: newStrtab(), statuses: newStrtab(),
		remoteIdx: &readIndex{}, nodeIdx: &readIndex{},
	}
}

// jsonContent returns s escaped for the inside of a JSON string.
func jsonContent(s string) string {
	b := appendJSONString(nil, []byte(s))
	return string(b[1 : len(b)-1])
}

func (in *interner) remote(s string) uint32 {
	c, added := in.remotes.code(s)
	if added {
		in.json.remotes = append(in.json.remotes, jsonContent(s))
		in.remoteIdx.add(in.remotes.strs[c], c)
	}
	return c
}

func (in *interner) node(s string) uint32 {
	c, added := in.nodes.code(s)
	if added {
		in.json.nodes = append(in.json.nodes, jsonContent(s))
		in.nodeIdx.add(in.nodes.strs[c], c)
	}
	return c
}

func (in *interner) typ(s string) uint32 {
	c, added := in.types.code(s)
	if added {
		in.json.types = append(in.json.types, jsonContent(s))
	}
	return c
}

func (in *interner) user(s string) uint32 {
	c, added := in.users.code(s)
	if added {
		in.userLower = append(in.userLower, strings.ToLower(s))
		in.json.users = append(in.json.users, jsonContent(s))
	}
	return c
}

func (in *interner) status(s string) uint32 {
	c, added := in.statuses.code(s)
	if added {
		in.statusClass = append(in.statusClass, task.ClassifyStatus(s))
		in.json.statuses = append(in.json.statuses, jsonContent(s))
	}
	return c
}

func (in *interner) id(s string) uint32 {
	c, added := in.ids.code(s)
	if added {
		esc := task.EscapeWorkerID(s)
		in.idEscaped = append(in.idEscaped, esc)
		in.json.ids = append(in.json.ids, jsonContent(s))
		in.json.idEscaped = append(in.json.idEscaped, jsonContent(esc))
	}
	return c
}

// size is the number of interned strings of all kinds.
func (in *interner) size() int {
	return len(in.remotes.strs) + len(in.nodes.strs) + len(in.types.strs) +
		len(in.ids.strs) + len(in.users.strs) + len(in.statuses.strs)
}

// view returns an immutable view of the tables as they are now. Later codes
// are appended past the view's length and never change an existing entry,
// so a view stays valid while the Writer interns more strings.
func (in *interner) view() *dict {
	return &dict{
		remotes: in.remotes.strs, nodes: in.nodes.strs, types: in.types.strs,
		ids: in.ids.strs, users: in.users.strs, statuses: in.statuses.strs,
		remoteIdx: in.remoteIdx, nodeIdx: in.nodeIdx,
		userLower: in.userLower, statusClass: in.statusClass, idEscaped: in.idEscaped,
		json: in.json,
	}
}

// dict is a read-only view of the interner, shared by snapshots.
type dict struct {
	remotes, nodes, types, ids, users, statuses []string

	remoteIdx, nodeIdx *readIndex

	userLower   []string
	statusClass []task.StatusClass
	idEscaped   []string
	json        jsonForms
}

// readIndex maps the strings of a table to their codes for readers, so that
// a filter on one remote among 10,000 costs one look-up, not a scan. The
// Writer adds each string once, when it interns it; readers only load, and
// a view ignores the codes past its own end (strings interned after it).
type readIndex struct {
	codes sync.Map // string → uint32
}

// add records the code of a newly interned string.
func (x *readIndex) add(s string, code uint32) { x.codes.Store(s, code) }

// lookup returns the code of s in strs, a view of the table x indexes.
func (x *readIndex) lookup(strs []string, s string) (uint32, bool) {
	v, ok := x.codes.Load(s)
	if !ok {
		return 0, false
	}
	c := v.(uint32)
	return c, int(c) < len(strs)
}
